#!/usr/bin/env bash
# Autobahn conformance run against the echo example.
#
#   scripts/autobahn.sh                 all cases (but permessage-deflate 12.*, 13.*)
#   scripts/autobahn.sh '1.*' '7.*'     only these case globs (passed to the runner)
#
# Environment:
#   PORT=9001            port to serve on (the next free one is taken if it is busy)
#   AUTOBAHN_RUNNER=...  runner script (default ../shared/tools/autobahn/run.sh beside the
#                        repository); its own variables (AUTOBAHN_EXCLUDE, ...) pass through
#
# Builds examples/echo in release, starts it with a 16 MiB payload limit, runs the cases,
# stops the server. Exits non-zero if the server did not start or any case failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

runner=${AUTOBAHN_RUNNER:-$root/../shared/tools/autobahn/run.sh}
if [ ! -f "$runner" ]; then
  echo "autobahn.sh: runner not found: $runner (set AUTOBAHN_RUNNER)" >&2
  exit 2
fi

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

"$server" --listen "127.0.0.1:$port" --max-payload 16777216 2>"$log" &
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
"$runner" "ws://127.0.0.1:$port" "$@" || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
  echo "autobahn.sh: the echo server died during the run:" >&2
  cat "$log" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
