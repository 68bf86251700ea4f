#!/usr/bin/env bash
# The project's test command (README.md): every Rust test, then the Python end-to-end suite.
# Sets up what it needs (the Python venv with websockets) through the project's own scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --examples
cargo test --all-targets
cargo test --doc
if [ -x tests/python/run.sh ]; then
  tests/python/run.sh
fi
