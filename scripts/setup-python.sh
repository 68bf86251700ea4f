#!/usr/bin/env bash
# Creates .venv with what the Python end-to-end tests need (websockets), once.
# Usage: scripts/setup-python.sh   (prints the venv's python path last)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "websockets>=12,<16"
fi
echo "$venv/bin/python"
