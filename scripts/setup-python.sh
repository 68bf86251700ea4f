#!/usr/bin/env bash
# Creates .venv with what the Python end-to-end tests need (websockets, and selenium for the
# browser test, tests/python/test_browser.py), once.
# Usage: scripts/setup-python.sh   (prints the venv's python path last)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import websockets, selenium' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "websockets>=12,<16" "selenium>=4.10,<5"
fi
echo "$venv/bin/python"
