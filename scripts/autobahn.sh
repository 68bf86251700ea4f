#!/usr/bin/env bash
# Autobahn conformance run against the echo example.
#
#   scripts/autobahn.sh                   every case but permessage-deflate's 12.*, 13.*
#   scripts/autobahn.sh '1.*' '7.*'       only these cases (ids or globs, comma lists allowed)
#   scripts/autobahn.sh --deflate [...]   also 12.* and 13.* (same as AUTOBAHN_DEFLATE=1)
#
# Environment:
#   PORT=9001            port to serve on (the next free one is taken if it is busy)
#   AUTOBAHN_DEFLATE=1   as --deflate: 12.*/13.* too, and echo started with `--deflate`
#                        when it has that flag (until it does, those cases fail UNIMPLEMENTED)
#   scripts/autobahn/run.sh's variables (AUTOBAHN_REPORT_DIR, AUTOBAHN_TIMEOUT) and
#   install.sh's (AUTOBAHN_VENV, AUTOBAHN_PYTHON2) pass through.
#
# Needs nothing outside the repository: the first run installs the Autobahn testsuite
# (wstest, Python 2.7 only) into a cached virtualenv (scripts/autobahn/install.sh says where
# it looks for a Python 2.7, and stops with a message if there is none).
# Builds examples/echo in release, starts it with a 16 MiB payload limit, runs the cases,
# stops the server. Last line `autobahn: N passed, M failed`. Exits non-zero if the suite
# could not be installed, the server did not start, or any case failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cases=()
for arg in "$@"; do
  case $arg in
    --deflate) export AUTOBAHN_DEFLATE=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "autobahn.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) cases+=("$arg") ;;
  esac
done

# Install (or find) the suite before building, so a machine without Python 2.7 hears so at once.
scripts/autobahn/install.sh >/dev/null

cargo build --release --example echo
server=${CARGO_TARGET_DIR:-$root/target}/release/examples/echo

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${PORT:-9001}
for _ in $(seq 100); do
  port_busy "$port" || break
  echo "autobahn.sh: port $port is busy, trying $((port + 1))" >&2
  port=$((port + 1))
done

log=$(mktemp "${TMPDIR:-/tmp}/postern-echo.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

server_args=(--listen "127.0.0.1:$port" --max-payload 16777216)
if [ "${AUTOBAHN_DEFLATE:-0}" = 1 ]; then
  case $("$server" --help 2>&1 || true) in
    *--deflate*) server_args+=(--deflate) ;;
    *) echo "autobahn.sh: the echo example has no --deflate yet: 12.*/13.* will fail UNIMPLEMENTED" >&2 ;;
  esac
fi
"$server" "${server_args[@]}" 2>"$log" &
pid=$!

# Wait (at most 30 s) for the server to say it is ready.
for _ in $(seq 300); do
  grep -q "listening on" "$log" && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "autobahn.sh: echo server exited before listening:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
if ! grep -q "listening on" "$log"; then
  echo "autobahn.sh: echo server not listening after 30 s" >&2
  cat "$log" >&2
  exit 1
fi
echo "autobahn.sh: $(grep -m1 "listening on" "$log") (pid $pid)" >&2

status=0
scripts/autobahn/run.sh "ws://127.0.0.1:$port" ${cases[@]+"${cases[@]}"} || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
  echo "autobahn.sh: the echo server died during the run:" >&2
  cat "$log" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
