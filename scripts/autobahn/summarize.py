"""Summarise an Autobahn fuzzingclient run. Usage: python3 summarize.py SPEC.json INDEX.json

A case passes when both its behaviour and its close behaviour are OK, NON-STRICT or
INFORMATIONAL. Anything else fails: FAILED, WRONG CODE, UNCLEAN, FAILED BY CLIENT (the suite
dropped the connection), UNIMPLEMENTED (12.*/13.* when the server did not negotiate
permessage-deflate), and every case of the spec that has no result (not run, for example
because wstest was killed or the server died).

Prints a table of outcomes (as behaviour, as close behaviour), the failing cases, the cases
not run, and last `autobahn: N passed, M failed`. Exits 1 when M > 0.
"""
import collections
import json
import sys

PASSING = frozenset({"OK", "NON-STRICT", "INFORMATIONAL"})
NOT_RUN = "NOT RUN"


def load_results(index_path):
    """Case id -> result dict, from the report's index.json (empty if there is none)."""
    try:
        with open(index_path) as f:
            index = json.load(f)
    except (OSError, ValueError) as err:
        print(f"autobahn: no usable report at {index_path} ({err.__class__.__name__})")
        return {}
    results = {}
    for per_agent in index.values():
        results.update(per_agent)
    return results


def main(spec_path, index_path):
    with open(spec_path) as f:
        selected = json.load(f)["cases"]
    results = load_results(index_path)
    counts = collections.Counter()
    failing, not_run = [], []
    for case in selected:
        result = results.get(case)
        if result is None:
            not_run.append(case)
            counts[(NOT_RUN, "behaviour")] += 1
            counts[(NOT_RUN, "close")] += 1
            continue
        behaviour, close = result["behavior"], result["behaviorClose"]
        counts[(behaviour, "behaviour")] += 1
        counts[(close, "close")] += 1
        if behaviour not in PASSING or close not in PASSING:
            failing.append(f"  {case:9} behaviour={behaviour} close={close} "
                           f"close code={result.get('remoteCloseCode')}")

    outcomes = sorted({outcome for outcome, _ in counts},
                      key=lambda o: -(counts[(o, "behaviour")] + counts[(o, "close")]))
    print(f"{'outcome':16}{'behaviour':>10}{'close':>7}")
    for outcome in outcomes:
        print(f"{outcome:16}{counts[(outcome, 'behaviour')]:10}{counts[(outcome, 'close')]:7}")
    if failing:
        print(f"failing ({len(failing)}):")
        print("\n".join(failing))
    if not_run:
        shown = " ".join(not_run[:20]) + (" ..." if len(not_run) > 20 else "")
        print(f"not run ({len(not_run)}): {shown}")
    failed = len(failing) + len(not_run)
    print(f"autobahn: {len(selected) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
