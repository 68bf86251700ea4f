#!/usr/bin/env bash
# Soak test of postern's chat gateway (examples/chat.rs), issue 7.
#
# Builds loadgen/ (release) and the chat example (release), starts one chat server pinned
# to core SERVER_CORE (`--listen 127.0.0.1:PORT --user soak:TOKEN --heartbeat-ms HB_MS --max-sessions-per-owner 100000`: one user holds every session)
# and runs `loadgen soak` against it pinned to core CLIENT_CORE, its connections spread
# over the source addresses 127.0.0.1 to 127.0.0.4:
#   - SESSIONS chat sessions are opened and identified (all in `general`), each
#     heartbeating every HB_MS ms (phases spread evenly over the interval);
#   - for DURATION seconds: MSGS MESSAGE_CREATE a second, each from the next session in
#     turn (every session receives every message); CHURN times a minute a random session
#     loses its connection (Close frame, FIN, RST, or Close frame awaiting the server's,
#     by turns), reconnects 200-2000 ms later and resumes from the last `s` it received;
#   - every REPORT_EVERY seconds a sample: the server's RSS (VmRSS) and CPU share,
#     sessions identified, events, messages, resumes, drops, events lost so far.
# Every session's events are checked for the whole run: `s` exactly +1 (across resumes,
# so the replay must continue from the last `s`), message ids consecutive and complete.
# Verdict (PASS needs all three):
#   unexpected_drops = 0    closes and fatal 150s the load generator did not cause,
#                           failed reconnects
#   lost_events = 0         sequence gaps, missing messages, refused resumes (4006)
#   RSS flat after warm-up  the samples from minute WARMUP_MIN on within MAX_SPREAD %
#                           of their minimum. The server keeps each session's last 256
#                           events for replay, so its RSS grows until those buffers are
#                           full (at 2 messages/s: about 2 minutes): the warm-up.
# The exit status is 0 only on PASS.
#
# Environment (defaults):
#   SESSIONS=15000        at most 19000 (20,000 descriptors per process)
#   DURATION=600          seconds of churn and messages, 10 to 3600
#   HB_MS=2000            heartbeat interval (server's --heartbeat-ms and the clients')
#   CHURN=300             drops and resumes per minute
#   MSGS=2                MESSAGE_CREATE per second
#   REPORT_EVERY=60       seconds between samples
#   WARMUP_MIN=3          minutes of the steady phase not held to the RSS bound
#   MAX_SPREAD=5          % allowed between the lowest and highest RSS after warm-up
#   PORT=9307 SERVER_CORE=0 CLIENT_CORE=1 TOKEN=soak-token
#   OUT=<repo>/target/soak
# Output: OUT/soak.jsonl (one JSON line per sample, then the final report),
# OUT/soak.log (the load generator's progress), OUT/server-chat.log.
# Quick run (about 2 minutes): SESSIONS=2000 DURATION=60 REPORT_EVERY=10 WARMUP_MIN=0.5 \
#   MSGS=10 scripts/soak.sh
#
# Only loopback addresses are used; the run is bounded by a timeout (DURATION + 10 min),
# and the server is stopped on exit, Ctrl-C or failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SESSIONS=${SESSIONS:-15000}
DURATION=${DURATION:-600}
HB_MS=${HB_MS:-2000}
CHURN=${CHURN:-300}
MSGS=${MSGS:-2}
REPORT_EVERY=${REPORT_EVERY:-60}
WARMUP_MIN=${WARMUP_MIN:-3}
MAX_SPREAD=${MAX_SPREAD:-5}
PORT=${PORT:-9307}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
TOKEN=${TOKEN:-soak-token}
OUT=${OUT:-$ROOT/target/soak}

# Bounds: descriptors (20,000 per process here) and the session's time.
if [ "$SESSIONS" -gt 19000 ]; then SESSIONS=19000; fi
if [ "$SESSIONS" -lt 2 ]; then SESSIONS=2; fi
DURATION=$(python3 -c "print(int(min(3600, max(10, float('$DURATION')))))")
LIMIT=$((DURATION + 600))

ADDR=127.0.0.1:$PORT
SOURCES=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4
LOADGEN=$ROOT/loadgen/target/release/loadgen
CHAT=$ROOT/target/release/examples/chat
RESULTS=$OUT/soak.jsonl
SERVER_LOG=$OUT/server-chat.log

mkdir -p "$OUT"
: >"$RESULTS"
log() { echo "[soak] $*" >&2; }

# shellcheck source=scripts/lib/server.sh
source "$ROOT/scripts/lib/server.sh"
trap stop_server EXIT INT TERM

log "building loadgen (release)"
cargo build --release --quiet --manifest-path "$ROOT/loadgen/Cargo.toml" --bins
log "building postern's chat example (release)"
(cd "$ROOT" && cargo build --release --quiet --example chat)

start_pinned "$SERVER_CORE" "$SERVER_LOG" "$CHAT" --listen "$ADDR" --user "soak:$TOKEN" \
    --heartbeat-ms "$HB_MS" --max-sessions-per-owner 100000 || exit 1
log "chat (pid $SERVER_PID) on $ADDR; $SESSIONS sessions, heartbeat $HB_MS ms," \
    "$DURATION s of churn $CHURN/min and $MSGS msg/s; at most $LIMIT s"

STATUS=0
timeout "$LIMIT" taskset -c "$CLIENT_CORE" "$LOADGEN" soak --url "ws://$ADDR/" \
    --pid "$SERVER_PID" --label postern-chat --sources "$SOURCES" --token "$TOKEN" \
    --conns "$SESSIONS" --duration "$DURATION" --churn-per-min "$CHURN" \
    --msgs-per-s "$MSGS" --report-every "$REPORT_EVERY" --warmup-min "$WARMUP_MIN" \
    --max-rss-spread-pct "$MAX_SPREAD" --tag "sessions=$SESSIONS" --tag "hb_ms=$HB_MS" \
    >"$OUT/soak.out" 2> >(tee "$OUT/soak.log" >&2) || STATUS=$?
grep '^{' "$OUT/soak.out" >"$RESULTS" || true
stop_server
sleep 0.2 # the progress tee
grep -v '^{' "$OUT/soak.out" || true

python3 - "$RESULTS" "$STATUS" "$MAX_SPREAD" <<'EOF'
"""Per-sample RSS and the verdict."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
samples = [r for r in rows if r.get("bench") == "soak_sample"]
final = next((r for r in rows if r.get("bench") == "soak"), None)
print(f"\nsamples ({sys.argv[1]}):")
print(f"{'minute':>7} {'rss_kib':>10} {'cpu%':>6} {'identified':>10} {'events':>11} "
      f"{'msgs':>6} {'resumes':>7} {'drops':>5} {'lost':>5}")
for s in samples:
    cpu = s.get("server_cpu_pct")
    cpu = "-" if cpu is None else f"{cpu:.2f}"
    print(f"{s['minute']:>7.2f} {s['rss_kib']:>10,} {cpu:>6} {s['identified']:>10,} "
          f"{s['events']:>11,} {s['messages_sent']:>6,} {s['resumes_ok']:>7,} "
          f"{s['unexpected_drops']:>5} {s['lost_so_far']:>5}")
if final is None:
    print(f"\nFAIL: no final report (load generator exit status {sys.argv[2]})")
    sys.exit(1)
spread = final.get("rss_spread_pct_after_warmup")
print(f"\n{final['identified_at_start']:,} sessions, {final['duration_s']} s, "
      f"{final['churned']:,} churned, {final['resumes_ok']:,} resumes ok, "
      f"{final['resumes_refused']} refused, {final['messages_sent']:,} messages, "
      f"{final['events']:,} events, server CPU {final['server_cpu_pct']}%")
print(f"unexpected drops: {final['unexpected_drops']} (must be 0)")
print(f"events lost:      {final['lost_events']} (must be 0; duplicates "
      f"{final['seq_dups'] + final['message_dups']})")
print(f"RSS after warm-up: {final['rss_min_kib']} to {final['rss_max_kib']} KiB, "
      f"spread {spread}% (must be <= {sys.argv[3]})")
verdict = "PASS" if final.get("pass") else "FAIL"
print(verdict)
sys.exit(0 if final.get("pass") and sys.argv[2] == "0" else 1)
EOF
