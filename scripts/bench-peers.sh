#!/usr/bin/env bash
# Compares postern's echo example with peer echo servers, one core each, on loopback.
#
# Builds loadgen/ (release) and postern's `echo` example, then, REPEATS times, for each
# server in turn: starts it pinned to core SERVER_CORE, runs the load generator pinned
# to core CLIENT_CORE with --pid (echo 64 B x 100 conns x pipeline 16, echo 64 B
# pipeline 1, echo 4096 B, upgrades), stops it, starts it afresh and measures the idle
# footprint at IDLE_CONNS connections. JSON lines go to target/bench/results.jsonl;
# a summary of medians and postern/peer ratios of the per-server-CPU-second figures
# (and of RSS per idle connection) is printed at the end.
#
# Environment (defaults):
#   DURATION=5 WARMUP=1      measured / warm-up seconds per load-generator run
#   REPEATS=2                rounds over all servers (alternating)
#   IDLE_CONNS=15000 IDLE_HOLD=2
#   ECHO_CONNS=100 UPGRADE_IN_FLIGHT=64
#   SERVERS="postern tungstenite tungstenite-4k fastwebsockets"
#   PORT=9301 SERVER_CORE=0 CLIENT_CORE=1
#   OUT=<repo>/target/bench
# Quick run (about 2 minutes): DURATION=2 WARMUP=0.5 REPEATS=1 scripts/bench-peers.sh
#
# Only loopback addresses are used; every step is bounded by a timeout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
REPEATS=${REPEATS:-2}
IDLE_CONNS=${IDLE_CONNS:-15000}
IDLE_HOLD=${IDLE_HOLD:-2}
ECHO_CONNS=${ECHO_CONNS:-100}
UPGRADE_IN_FLIGHT=${UPGRADE_IN_FLIGHT:-64}
SERVERS=${SERVERS:-"postern tungstenite tungstenite-4k fastwebsockets"}
PORT=${PORT:-9301}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
OUT=${OUT:-$ROOT/target/bench}

ADDR=127.0.0.1:$PORT
URL=ws://$ADDR/
BENCH_BIN=$ROOT/loadgen/target/release
LOADGEN=$BENCH_BIN/loadgen
RESULTS=$OUT/results.jsonl
# Seconds a single load-generator run may take before it is killed.
RUN_TIMEOUT=$(python3 -c "print(int($DURATION + $WARMUP + 60))")

mkdir -p "$OUT"
: >"$RESULTS"
log() { echo "[bench-peers] $*" >&2; }

# shellcheck source=scripts/lib/server.sh
source "$ROOT/scripts/lib/server.sh"
trap stop_server EXIT INT TERM

# The command line of server $1 (without --listen).
server_cmd() {
    case $1 in
        postern) echo "$ROOT/target/release/examples/echo" ;;
        tungstenite) echo "$BENCH_BIN/peer_tungstenite" ;;
        tungstenite-4k) echo "$BENCH_BIN/peer_tungstenite --read-buffer 4096" ;;
        fastwebsockets) echo "$BENCH_BIN/peer_fastwebsockets" ;;
        *) log "unknown server $1"; return 1 ;;
    esac
}

# Starts server $1 pinned to SERVER_CORE and waits (10 s at most) for "listening on".
start_server() {
    # shellcheck disable=SC2046 # the command is split into words on purpose
    start_pinned "$SERVER_CORE" "$OUT/server-$1.log" $(server_cmd "$1") --listen "$ADDR"
}

# Runs one load-generator case against the running server: $1 = server, $2 = case,
# the rest = loadgen arguments. Appends the JSON line to RESULTS.
run_case() {
    local server=$1 case=$2
    shift 2
    local out
    if ! out=$(timeout "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$LOADGEN" "$@" \
        --url "$URL" --pid "$SERVER_PID" --label "$server" --tag "case=$case" --quiet); then
        log "$server $case: load generator failed"
        return 0
    fi
    local json
    json=$(grep '^{' <<<"$out" | tail -1)
    echo "$json" >>"$RESULTS"
    log "$server $case: $json"
}

log "building bench (release)"
cargo build --release --quiet --manifest-path "$ROOT/loadgen/Cargo.toml" --bins
available=""
for s in $SERVERS; do
    if [ "$s" = postern ]; then
        log "building postern's echo example (release)"
        if ! (cd "$ROOT" && cargo build --release --quiet --example echo); then
            log "postern's echo example did not build: skipping postern"
            continue
        fi
    fi
    available="$available $s"
done

for rep in $(seq "$REPEATS"); do
    for s in $available; do
        log "round $rep/$REPEATS: $s"
        start_server "$s" || continue
        run_case "$s" echo64_p16 echo --conns "$ECHO_CONNS" --pipeline 16 --size 64 \
            --duration "$DURATION" --warmup "$WARMUP"
        run_case "$s" echo64_p1 echo --conns "$ECHO_CONNS" --pipeline 1 --size 64 \
            --duration "$DURATION" --warmup "$WARMUP"
        run_case "$s" echo4096_p16 echo --conns "$ECHO_CONNS" --pipeline 16 --size 4096 \
            --duration "$DURATION" --warmup "$WARMUP"
        run_case "$s" upgrades upgrades --conns-in-flight "$UPGRADE_IN_FLIGHT" \
            --duration "$DURATION" --warmup "$WARMUP"
        stop_server
        # Idle footprint on a fresh process, so earlier runs leave no heap behind.
        start_server "$s" || continue
        run_case "$s" "idle$IDLE_CONNS" idle --conns "$IDLE_CONNS" --hold "$IDLE_HOLD" --open-timeout 50 \
            --sources 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4
        stop_server
    done
done

python3 - "$RESULTS" <<'EOF'
"""Medians per (case, server) and postern/peer ratios of the headline figures."""
import json
import statistics
import sys

# case -> figures to summarise
FIGURES = {
    "echo64_p16": ["msgs_per_server_cpu_s", "msgs_per_s", "p99_us"],
    "echo64_p1": ["msgs_per_server_cpu_s", "msgs_per_s", "p99_us"],
    "echo4096_p16": ["msgs_per_server_cpu_s", "mb_per_s", "p99_us"],
    "upgrades": ["upgrades_per_server_cpu_s", "upgrades_per_s", "p99_us"],
}
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
servers = list(dict.fromkeys(r["label"] for r in rows))
seen = list(dict.fromkeys(r["case"] for r in rows))
cases = [c for c in FIGURES if c in seen] + [c for c in seen if c not in FIGURES]


def median(case, server, key):
    vals = [r.get(key) for r in rows if r["case"] == case and r["label"] == server]
    vals = [v for v in vals if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


peers = [s for s in servers if s != "postern"]
head = ["case", "figure"] + servers + [f"postern/{p}" for p in peers if "postern" in servers]
table = []
for case in cases:
    keys = FIGURES.get(case, ["rss_per_conn_kib", "upgrades_per_server_cpu_s"])
    for key in keys:
        meds = {s: median(case, s, key) for s in servers}
        ratios = []
        if "postern" in servers:
            for p in peers:
                a, b = meds["postern"], meds[p]
                ratios.append(f"{a / b:.2f}" if a is not None and b else "-")
        table.append([case, key] + [fmt(meds[s]) for s in servers] + ratios)
widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
print(f"\nmedians over {len(rows)} runs ({sys.argv[1]}); "
      "ratios > 1 favour postern except for p99_us and rss_per_conn_kib")
for r in [head] + table:
    print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
other = [r.get("other_cpu") for r in rows if isinstance(r.get("other_cpu"), (int, float))]
if other and max(other) > 0.3:
    print(f"\nwarning: up to {max(other):.2f} cores went to other processes or to "
          "interrupts during runs: throughput figures are disturbed; "
          "per-server-CPU-second figures less so")
EOF
