#!/usr/bin/env python3
"""Prints the median time and throughput of every criterion benchmark last run.

Usage: python3 loadgen/criterion-medians.py [TARGET_DIR/criterion] [GROUP ...]

Criterion's console line shows [low estimate high] of the mean; this reads the median
(`median.point_estimate`, ns per iteration) from each benchmark's new/estimates.json
and the Throughput set in new/benchmark.json, and prints one Markdown table row each,
with the time the estimate was written (an old time means a benchmark that no longer
exists or was not rerun).
"""
import datetime
import json
import pathlib
import sys


def rate(per_s, unit):
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if per_s >= scale:
            return f"{per_s / scale:.2f} {prefix}{unit}/s"
    return f"{per_s:.2f} {unit}/s"


def time(ns):
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    groups = set(sys.argv[2:])
    print("| benchmark | median time | median throughput | measured |")
    print("|---|---|---|---|")
    for bench in sorted(root.glob("**/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        if groups and meta["group_id"] not in groups:
            continue
        est_path = bench.parent / "estimates.json"
        est = json.loads(est_path.read_text())
        when = datetime.datetime.fromtimestamp(est_path.stat().st_mtime)
        ns = est["median"]["point_estimate"]
        thr = meta.get("throughput") or {}
        if "Bytes" in thr:
            tput = f"{thr['Bytes'] / ns:.2f} GB/s ({thr['Bytes'] / ns / 1.073741824:.2f} GiB/s)"
        elif "Elements" in thr:
            tput = rate(thr["Elements"] / ns * 1e9, "elem")
        else:
            tput = "-"
        print(f"| {meta['full_id']} | {time(ns)} | {tput} | {when:%Y-%m-%d %H:%M} |")


if __name__ == "__main__":
    main()
