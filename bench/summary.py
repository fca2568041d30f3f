# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The summary `make bench` prints at the end: every target, the measured ratio, met or not.

    python bench/summary.py [results.jsonl] [--all]

Reads the JSON lines the bench scripts wrote (bench/results.py) and prints one row per target, in the order
they were measured; --all adds the figures without a goal. Exits 0 whatever is met: it reports, the ratios
are for people to read (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import path as default_path

# For a target not met: what is known to get past it (measured floors are in each row's note).
DESIGNS = (
    ("map_sync: 1% change", "keep the last synced key set on the host and diff against it, with a drift check "
                            "(issue 28 item 4, the map-sync half: the scale helper's)"),
    ("programs: slowest program", "egress_ratelimit charged: skb->tstamp where the stack set a monotonic delivery "
                                  "time (TCP's EDT) instead of bpf_ktime_get_ns, +50 ns of the floor here; "
                                  "flow_export's full path has its per-CPU 'full' flag"),
    ("veth_mpps: firewall", "what the listed path still does beyond a plain blocklist: the deny prefilter's two "
                            "array reads (kept: they make the clean path flat), the allow index's two, the per-CPU "
                            "counter slot and the per-reason counters; next: one combined index word for deny and "
                            "allow, and reason counters folded into ws_stats"),
    ("scaling:", "the limiters write per-source state both CPUs share, by design (one limit per source); the "
                 "firewall's drop path now writes nothing shared. This VM has no PMU (perf stat: <not supported>), so "
                 "cache misses could not be counted; the 1024 sources' entries (~90 KiB) fit each core's 512 KiB L2"),
    ("map_memory:", "a smaller deny_hits pool (2048 slots x 8 B x CPUs is counted against the entries), or slots "
                    "handed back by the engine when it deletes entries"),
)


def load(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def fmt(value: float, unit: str) -> str:
    if unit == "x":
        return "%.2fx" % value
    if unit == "s":
        return "%.3f s" % value
    if unit == "ns":
        return "%.1f ns" % value
    return ("%.2f %s" % (value, unit)).strip()


def table(rows: list[dict], show_all: bool = False) -> str:
    shown = [r for r in rows if show_all or "goal" in r]
    if not shown:
        return "no bench results (run `make bench`)"
    lines = []
    width = max(len("%s: %s" % (r["bench"], r["name"])) for r in shown)
    lines.append("%-*s  %10s  %12s  %s" % (width, "target", "measured", "goal", "verdict"))
    for r in shown:
        label = "%s: %s" % (r["bench"], r["name"])
        goal = "%s %s" % (r["op"], fmt(r["goal"], r["unit"])) if "goal" in r else ""
        verdict = ("met" if r["met"] else "NOT met") if "goal" in r else ""
        lines.append("%-*s  %10s  %12s  %s" % (width, label, fmt(r["value"], r.get("unit", "")), goal, verdict))
    for r in shown:
        if "goal" not in r or r["met"]:
            continue
        label = "%s: %s" % (r["bench"], r["name"])
        if r.get("note"):
            lines.append("  %s -- %s" % (label, r["note"]))
        design = next((d for prefix, d in DESIGNS if label.startswith(prefix)), None)
        if design:
            lines.append("  %s -- design past it: %s" % (label, design))
    targets = [r for r in rows if "goal" in r]
    lines.append("%d of %d targets met" % (sum(r["met"] for r in targets), len(targets)))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", default=default_path())
    parser.add_argument("--all", action="store_true", help="also the figures without a goal")
    args = parser.parse_args()
    print("\n== summary (%s) ==" % os.path.relpath(args.results))
    print(table(load(args.results), args.all))


if __name__ == "__main__":
    main()
