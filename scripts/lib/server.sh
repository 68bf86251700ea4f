# Sourced by the benchmark and soak scripts: the server under test, its start and its stop.
#
#   start_pinned CORE LOG CMD...   starts CMD pinned to CORE, stderr to LOG (truncated
#                                  first: a stale "listening on" must not count), sets
#                                  SERVER_PID, waits at most 10 s for "listening on";
#                                  returns 1 (server stopped) if it never comes
#   stop_server                    SIGTERM, up to 8 s for a graceful exit (a gateway waits
#                                  up to 5 s for its clients' Close replies), then SIGKILL
#
# The caller sets `trap stop_server EXIT INT TERM` so no server outlives the script.

SERVER_PID=""

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 80); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

start_pinned() {
    local core=$1 log_file=$2
    shift 2
    : >"$log_file"
    taskset -c "$core" "$@" 2>"$log_file" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if grep -q "listening on" "$log_file"; then
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "$1 did not start; see $log_file" >&2
    stop_server
    return 1
}
