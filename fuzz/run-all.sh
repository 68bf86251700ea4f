#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, one after another, and prints the
# executions and the outcome of each. New inputs go to fuzz/work/<target>/ (ignored by git);
# the seed corpus fuzz/corpus/<target>/ is only read; a crash is saved in
# fuzz/artifacts/<target>/ and the script exits non-zero at the end. See docs/FUZZING.md.
#
#   fuzz/run-all.sh [SECONDS] [TARGET...]
#
# SANITIZER=none skips AddressSanitizer (several times faster; postern forbids unsafe code,
# so ASan only watches its dependencies) and then needs no RUSTC_BOOTSTRAP at all.
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
export RUSTC_BOOTSTRAP=1
san=(--sanitizer "${SANITIZER:-address}")
cargo fuzz build "${san[@]}" || exit 1
failed=0
printf '%-22s %12s %10s  %s\n' target execs exec/s outcome
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "corpus/$t"
    log="work/$t.log"
    cargo fuzz run "${san[@]}" "$t" "work/$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
    if [ $rc -eq 0 ]; then
        outcome="ok"
    else
        failed=1
        outcome="CRASH: $(grep -m1 -o 'Test unit written to .*' "$log")"
    fi
    printf '%-22s %12s %10s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$outcome"
done
exit $failed
