#!/usr/bin/env bash
# The Python end-to-end suite: builds the release examples, sets up the venv
# (scripts/setup-python.sh), runs every tests/python/test_*.py (or the files given as
# arguments), each on its own. Exits non-zero on any failure; the last line printed is always
# `N passed, M failed`, summed over the files.
set -uo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "run.sh: $1" >&2
  echo "0 passed, 1 failed"
  exit 1
}

cargo build --release --examples >&2 || fail "cargo build --release --examples failed"
python=$(scripts/setup-python.sh | tail -n 1) || fail "scripts/setup-python.sh failed"
[ -x "$python" ] || fail "no python at '$python'"
export CHAT_BIN="$PWD/target/release/examples/chat"

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(tests/python/test_*.py)
passed=0
failed=0
status=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for file in "${files[@]}"; do
  echo "== $file"
  timeout 300 "$python" "$file" >"$out" 2>&1
  rc=$?
  cat "$out"
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [ -n "$last" ]; then
    p=${last%% passed*}
    f=${last#*, }
    f=${f%% failed*}
  elif ran=$(grep -Eo '^Ran [0-9]+ test' "$out" | tail -n 1 | grep -Eo '[0-9]+'); then
    # unittest: "Ran N tests" then "OK" or "FAILED (failures=a, errors=b)".
    f=0
    for n in $(grep -Eo '(failures|errors)=[0-9]+' "$out" | grep -Eo '[0-9]+'); do
      f=$((f + n))
    done
    p=$((ran - f))
  else
    p=0
    f=1
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  [ "$f" -eq 0 ] || status=1
done
echo "$passed passed, $failed failed"
exit "$status"
