#!/usr/bin/env bash
# Run the Autobahn|Testsuite's fuzzing client (wstest 25.10.1) against a running WebSocket
# echo server, and summarise the result.
#
#   scripts/autobahn/run.sh ws://127.0.0.1:9001                every case but 12.*, 13.*
#   scripts/autobahn/run.sh ws://127.0.0.1:9001 '1.*,2.*' 7.1.5 these cases (ids or globs)
#
# Environment:
#   AUTOBAHN_DEFLATE=1         also the permessage-deflate cases 12.* and 13.*
#   AUTOBAHN_REPORT_DIR=dir    reports go to dir/reports/servers (default target/autobahn)
#   AUTOBAHN_TIMEOUT=secs      give up on wstest after this long (default 1200; 3600 with
#                              deflate: 12.*/13.* are 216 slow cases)
#   AUTOBAHN_VENV, AUTOBAHN_PYTHON2: see install.sh (the suite is installed on first use)
#
# Prints the outcome counts, the failing cases and last `autobahn: N passed, M failed`
# (summarize.py has the rules). Exits 0 only when nothing failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${1:?usage: run.sh ws://HOST:PORT [CASES...]}
shift

# Every way out says how many failed, so a caller grepping the last line always finds one.
give_up() { echo "autobahn: $1" >&2; echo "autobahn: 0 passed, 1 failed"; exit 1; }

venv=$("$here/install.sh") || give_up "the testsuite is not installed (see above)"
out=${AUTOBAHN_REPORT_DIR:-target/autobahn}
mkdir -p "$out" && out=$(cd "$out" && pwd) || give_up "cannot make the report directory $out"
spec=$out/fuzzingclient.json
rm -rf "$out/reports/servers" "$spec"
"$venv/bin/python" "$here/spec.py" "$url" "$out/reports/servers" "$spec" "$@" ||
  give_up "no cases to run"

deflate=${AUTOBAHN_DEFLATE:-0}
limit=${AUTOBAHN_TIMEOUT:-$([ "$deflate" = 1 ] && echo 3600 || echo 1200)}
start=$(date +%s)
# wstest writes its reports only at the very end; cd so that it leaves nothing elsewhere.
(cd "$out" && timeout "$limit" "$venv/bin/wstest" -m fuzzingclient -s "$spec") >"$out/wstest.log" 2>&1
rc=$?
[ "$rc" = 124 ] && echo "autobahn: wstest killed after AUTOBAHN_TIMEOUT=$limit s"
echo "autobahn: wstest exited $rc after $(($(date +%s) - start)) s (log $out/wstest.log," \
  "report $out/reports/servers/index.html)"
grep -m1 '^Connection to .* failed' "$out/wstest.log"
exec python3 "$here/summarize.py" "$spec" "$out/reports/servers/index.json"
