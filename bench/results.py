# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Machine-readable bench results: one JSON line per figure, read by bench/summary.py.

Each bench script calls target() for every figure it checks against a goal and figure() for the ones it only
shows. Lines go to $WS_BENCH_RESULTS, else build/bench/results.jsonl (`make bench` empties it first).
"""

from __future__ import annotations

import json
import os
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = os.path.join(REPO, "build", "bench", "results.jsonl")


def path() -> str:
    return os.environ.get("WS_BENCH_RESULTS") or DEFAULT


def _write(row: dict) -> None:
    out = path()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    row["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(out, "a") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")


def met(value: float, op: str, goal: float) -> bool:
    return value >= goal if op == ">=" else value <= goal


def target(bench: str, name: str, value: float, op: str, goal: float, unit: str = "x", note: str = "") -> bool:
    """Record a figure with its goal (`value op goal`, op '>=' or '<='); returns whether it is met."""
    ok = met(value, op, goal)
    _write({"bench": bench, "name": name, "value": round(value, 4), "op": op, "goal": goal, "unit": unit,
            "met": ok, "note": note})
    return ok


def figure(bench: str, name: str, value: float, unit: str = "", note: str = "") -> None:
    """Record a figure shown without a goal (a reference, or a raw rate the ratios are made of)."""
    _write({"bench": bench, "name": name, "value": round(value, 4), "unit": unit, "note": note})
