#!/usr/bin/env bash
# Measures postern's chat gateway (examples/chat.rs): handshakes, fan-out and idle sessions.
#
# Builds loadgen/ (release) and the chat example (release), then, for each step, starts a
# fresh chat server pinned to core SERVER_CORE (`--user bench:TOKEN --heartbeat-ms HB_MS --max-sessions-per-owner 100000`: one user holds every session)
# and runs the load generator pinned to core CLIENT_CORE with --pid:
#   handshakes    upgrades --chat: connect, upgrade, 100, 110, 140, close; per second and
#                 per server CPU-second, latency p50/p99
#   fanout1000    fanout --chat with 1,000 members in `general`: one MESSAGE_CREATE per
#   fanout10000   round, time until the last member has it, deliveries per second and per
#                 server CPU-second (and 10,000 members)
#   fanout10000burst  10,000 members; each round one member sends FANOUT_BURST messages in
#                 one write (a busy room): the server broadcasts them in one turn and hands
#                 each member all of them in one writev
#   sessions      SESSIONS identified sessions heartbeating every HB_MS, spread evenly,
#                 held HOLD seconds: server CPU share, RSS per session, sessions closed
# Each step gets a fresh server: a closed chat connection leaves its session resumable
# (in `general`) for 60 s, which would add members to the next step's channel.
# JSON lines go to OUT/gateway.jsonl; a summary with issue 4's targets is printed last.
#
# Environment (defaults):
#   DURATION=5 WARMUP=1        handshakes: measured / warm-up seconds
#   HANDSHAKE_IN_FLIGHT=64
#   FANOUT_ROUNDS=20 FANOUT_SETTLE_MS=200 FANOUT_BURST=16
#   SESSIONS=19000             at most 19500 (20,000 descriptors per process)
#   HOLD=60                    seconds, 5 to 600
#   HB_MS=20000                heartbeat interval (server's --heartbeat-ms and the clients')
#   REPEATS=1                  rounds over all steps
#   STEPS="handshakes fanout1000 fanout10000 sessions"
#   PORT=9302 SERVER_CORE=0 CLIENT_CORE=1 TOKEN=bench-token
#   OUT=<repo>/target/bench
# Quick run (about 40 s): HOLD=10 SESSIONS=5000 DURATION=2 scripts/bench-gateway.sh
#
# Only loopback addresses are used; every step is bounded by a timeout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
HANDSHAKE_IN_FLIGHT=${HANDSHAKE_IN_FLIGHT:-64}
FANOUT_ROUNDS=${FANOUT_ROUNDS:-20}
FANOUT_SETTLE_MS=${FANOUT_SETTLE_MS:-200}
SESSIONS=${SESSIONS:-19000}
HOLD=${HOLD:-60}
HB_MS=${HB_MS:-20000}
REPEATS=${REPEATS:-1}
FANOUT_BURST=${FANOUT_BURST:-16}
STEPS=${STEPS:-"handshakes fanout1000 fanout10000 fanout10000burst sessions"}
PORT=${PORT:-9302}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
TOKEN=${TOKEN:-bench-token}
OUT=${OUT:-$ROOT/target/bench}

# Bounds: descriptors (20,000 per process here) and the session's time.
if [ "$SESSIONS" -gt 19500 ]; then SESSIONS=19500; fi
if [ "$SESSIONS" -lt 1 ]; then SESSIONS=1; fi
HOLD=$(python3 -c "print(min(600.0, max(5.0, float('$HOLD'))))")
DURATION=$(python3 -c "print(min(300.0, max(0.5, float('$DURATION'))))")

ADDR=127.0.0.1:$PORT
URL=ws://$ADDR/
SOURCES=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4
LOADGEN=$ROOT/loadgen/target/release/loadgen
CHAT=$ROOT/target/release/examples/chat
RESULTS=$OUT/gateway.jsonl

mkdir -p "$OUT"
: >"$RESULTS"
log() { echo "[bench-gateway] $*" >&2; }

# shellcheck source=scripts/lib/server.sh
source "$ROOT/scripts/lib/server.sh"
trap stop_server EXIT INT TERM

# Starts a fresh chat server pinned to SERVER_CORE; waits (10 s at most) for it.
start_server() {
    start_pinned "$SERVER_CORE" "$OUT/server-chat.log" "$CHAT" --listen "$ADDR" \
        --user "bench:$TOKEN" --heartbeat-ms "$HB_MS" --max-sessions-per-owner 100000
}

# Runs one step against the running server: $1 = case, $2 = timeout in seconds, the
# rest = loadgen arguments. Appends the JSON line to RESULTS.
run_case() {
    local case=$1 limit=$2
    shift 2
    local out
    if ! out=$(timeout "$limit" taskset -c "$CLIENT_CORE" "$LOADGEN" "$@" \
        --url "$URL" --pid "$SERVER_PID" --label postern-chat --tag "case=$case"); then
        log "$case: load generator failed or timed out (${limit} s)"
        return 0
    fi
    local json
    json=$(grep '^{' <<<"$out" | tail -1)
    echo "$json" >>"$RESULTS"
    log "$case: $json"
}

log "building loadgen (release)"
cargo build --release --quiet --manifest-path "$ROOT/loadgen/Cargo.toml" --bins
log "building postern's chat example (release)"
(cd "$ROOT" && cargo build --release --quiet --example chat)

int() { python3 -c "import math; print(math.ceil($1))"; }
HANDSHAKE_LIMIT=$(int "$DURATION + $WARMUP + 60")
SESSIONS_LIMIT=$(int "$HOLD + 180")

for rep in $(seq "$REPEATS"); do
    for step in $STEPS; do
        log "round $rep/$REPEATS: $step"
        start_server || continue
        case $step in
            handshakes)
                run_case handshakes "$HANDSHAKE_LIMIT" upgrades --chat "$TOKEN" \
                    --conns-in-flight "$HANDSHAKE_IN_FLIGHT" --duration "$DURATION" \
                    --warmup "$WARMUP" --quiet
                ;;
            fanout1000 | fanout10000)
                run_case "$step" 300 fanout --chat "$TOKEN" --conns "${step#fanout}" \
                    --heartbeat-ms "$HB_MS" --rounds "$FANOUT_ROUNDS" \
                    --settle-ms "$FANOUT_SETTLE_MS" --sources "$SOURCES" --quiet
                ;;
            fanout10000burst)
                run_case "fanout10000burst$FANOUT_BURST" 300 fanout --chat "$TOKEN" \
                    --conns 10000 --burst "$FANOUT_BURST" --heartbeat-ms "$HB_MS" \
                    --rounds "$FANOUT_ROUNDS" --settle-ms "$FANOUT_SETTLE_MS" \
                    --sources "$SOURCES" --quiet
                ;;
            sessions)
                # Progress (every 5 s of the hold) goes to stderr.
                run_case "sessions$SESSIONS" "$SESSIONS_LIMIT" sessions --token "$TOKEN" \
                    --conns "$SESSIONS" --heartbeat-ms "$HB_MS" --hold "$HOLD" \
                    --sources "$SOURCES"
                ;;
            *) log "unknown step $step" ;;
        esac
        stop_server
    done
done

python3 - "$RESULTS" <<'EOF'
"""Medians per case, and issue 4's gateway targets."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
FIGURES = {
    "handshakes": ["handshakes_per_server_cpu_s", "handshakes_per_s", "p50_us", "p99_us",
                   "server_cpu", "failed"],
    "fanout": ["deliveries_per_server_cpu_s", "deliveries_per_s", "last_ms_p50",
               "last_ms_max", "window_deliveries_per_server_cpu_s", "missed"],
    "sessions": ["identified", "hold_server_cpu_pct", "server_us_per_heartbeat",
                 "heartbeats_per_s", "rss_per_session_kib", "closed", "failed"],
}


def median(case, key):
    vals = [r.get(key) for r in rows if r["case"] == case]
    vals = [v for v in vals if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:.2f}"


cases = list(dict.fromkeys(r["case"] for r in rows))
print(f"\nmedians over {len(rows)} runs ({sys.argv[1]})")
table = [("case", "figure", "median")]
for case in cases:
    kind = next((k for k in FIGURES if case.startswith(k)), None)
    for key in FIGURES.get(kind, []):
        table.append((case, key, fmt(median(case, key))))
widths = [max(len(r[i]) for r in table) for i in range(3)]
for r in table:
    print("  ".join(c.rjust(w) for c, w in zip(r, widths)))

print("\nissue 4 targets:")
sess = [c for c in cases if c.startswith("sessions")]
for case in sess:
    pct, closed = median(case, "hold_server_cpu_pct"), median(case, "closed")
    n = median(case, "identified")
    if pct is None:
        print(f"  {case}: no CPU figure")
        continue
    verdict = "met" if pct < 5 and closed == 0 else "MISSED"
    print(f"  {fmt(n)} identified sessions, heartbeats every "
          f"{median(case, 'heartbeat_s')} s: server at {pct:.2f}% of a core "
          f"(target < 5%: {verdict}, {pct / 5:.2f}x the limit), "
          f"{fmt(closed)} closed")
if "fanout10000" in cases:
    d = median("fanout10000", "deliveries_per_server_cpu_s")
    if d:
        verdict = "met" if d >= 1e6 else "MISSED"
        print(f"  fan-out to 10,000: {d:,.0f} deliveries per server CPU-second "
              f"(target >= 1,000,000: {verdict}, {d / 1e6:.3f}x)")
for case in [c for c in cases if c.startswith("fanout10000burst")]:
    d = median(case, "deliveries_per_server_cpu_s")
    if d:
        print(f"  fan-out to 10,000, bursts of {case[len('fanout10000burst'):]}: "
              f"{d:,.0f} deliveries per server CPU-second ({d / 1e6:.3f}x the 1,000,000)")
other = [r.get("other_cpu") for r in rows if isinstance(r.get("other_cpu"), (int, float))]
if other and max(other) > 0.3:
    print(f"\nwarning: up to {max(other):.2f} cores went to other processes or to "
          "interrupts during runs: rates are disturbed; per-server-CPU-second figures less so")
EOF
