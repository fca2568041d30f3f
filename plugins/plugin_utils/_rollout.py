# -*- coding: utf-8 -*-
"""Staged rollout on the controller: batch sizes, each host's health across its change, the batch's decision and
the table of what happened per host.

A host's health is judged from counter samples taken on the host
(datapath_info health=true, the engine's info.sample): {at, aborted,
dropped, reasons: {"<if>/<program>: <reason>": packets}}.
Counters restart when a program is replaced, so a rate is only ever taken
between two samples of the same side of the change: the baseline before it,
the bake after it.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import math

from ansible_collections.wirespeed.datapath.plugins.plugin_utils._input import InputError


def rate(first: dict | None, last: dict | None) -> dict | None:
    """Drops per second between two samples, in total and by reason; None without a usable window."""
    if not first or not last or last["at"] <= first["at"]:
        return None
    seconds = last["at"] - first["at"]
    reasons = {}
    for key, packets in last.get("reasons", {}).items():
        rise = packets - first.get("reasons", {}).get(key, 0)
        if rise > 0:
            reasons[key] = rise / seconds
    return {"seconds": seconds, "dropped": max(0, last["dropped"] - first["dropped"]) / seconds, "reasons": reasons}


def aborted_rise(before: dict | None, after_change: dict | None, end: dict | None) -> int:
    """XDP_ABORTED packets counted since the change began (a replaced program restarts at 0, hence two views)."""
    if not end:
        return 0
    rises = [end["aborted"] - s["aborted"] for s in (before, after_change) if s]
    return max([0] + rises)


def judge(*, baseline: tuple | list | None, bake: tuple | list, ceiling: float | None = None) -> dict:
    """{healthy, problems, aborted, drop_rate_before, drop_rate_after, increase, reasons} for one host.

    baseline: (sample, sample) before the change, or None; bake: (sample right after the change, sample at
    the end of the bake). ceiling: the drop rate increase (drops/s) a host may show, or None for no limit.
    """
    before = rate(*baseline) if baseline else None
    after = rate(*bake)
    aborted = aborted_rise(baseline[-1] if baseline else None, bake[0], bake[1])
    problems = []
    if aborted:
        problems.append("XDP_ABORTED rose by %d packets" % aborted)
    increase = None
    worst = []
    if after is not None:
        increase = after["dropped"] - (before["dropped"] if before else 0.0)
        old = before["reasons"] if before else {}
        worst = sorted(((r - old.get(k, 0.0), k) for k, r in after["reasons"].items()), reverse=True)
        worst = ["%s +%.1f/s" % (k, r) for r, k in worst[:3] if r > 0]
    if ceiling is not None and increase is not None and increase > ceiling:
        mostly = ", mostly " + ", ".join(worst) if worst else ""
        problems.append("drops rose by %.1f/s (ceiling %s/s)%s" % (increase, _number(ceiling), mostly))
    return {"healthy": not problems, "problems": problems, "aborted": aborted,
            "drop_rate_before": round(before["dropped"], 2) if before else None,
            "drop_rate_after": round(after["dropped"], 2) if after else None,
            "increase": round(increase, 2) if increase is not None else None, "reasons": worst}


def _number(value: float) -> str:
    return ("%d" % value) if float(value).is_integer() else ("%g" % value)


def problem(values: dict, probe_is_file: bool) -> str:
    """'' when the run's own variables are usable, else one sentence naming the first bad one.
    values: {timeout, probe, bake, baseline, ceiling, reach}, None where not set."""
    timeout, bake = values.get("timeout"), values.get("bake")
    if timeout is not None and _whole(timeout, 1, 86400) is None:
        return ("wirespeed_confirm_timeout is %s; give whole seconds from 1 to 86400 (120 suits most fleets)."
                % timeout)
    for name, key, low in (("wirespeed_bake_seconds", "bake", 0), ("wirespeed_baseline_seconds", "baseline", 1),
                           ("wirespeed_confirm_reach_timeout", "reach", 1)):
        if values.get(key) is not None and _whole(values[key], low, 86400) is None:
            return "%s is %s; give whole seconds from %d to 86400." % (name, values[key], low)
    if values.get("probe") is not None and not probe_is_file:
        return "wirespeed_health_probe %s is not a file on the controller; give the path of a task file." % (
            values["probe"])
    ceiling = values.get("ceiling")
    if ceiling is not None:
        try:
            number = float(ceiling)
        except (TypeError, ValueError):
            number = None
        if isinstance(ceiling, bool) or number is None or math.isnan(number) or number < 0:
            return ("wirespeed_max_drop_rate_increase is %s; give the drops per second a host may add, a number "
                    "of 0 or more." % ceiling)
        if not (_whole(bake, 1, 86400) or _whole(values.get("baseline"), 1, 86400)):
            return ("wirespeed_max_drop_rate_increase needs a window to measure rates in; set "
                    "wirespeed_bake_seconds to 1 or more.")
    if timeout is not None and bake is not None and _whole(timeout, 1, 86400) <= _whole(bake, 0, 86400) + 10:
        return ("wirespeed_confirm_timeout is %s but the bake takes %s s; give the confirm at least the bake and "
                "10 s more." % (timeout, bake))
    return ""


def _whole(value, low, high):
    if isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        return None
    return int(text)


def parse_batches(batches: object, fleet: int, variable: str = "wirespeed_batches") -> list:
    """The batches for a play's serial, checked: whole host counts >= 1 or percentages "N%" (0 < N <= 100) that
    reach the whole fleet of `fleet` hosts (sized as Ansible sizes serial batches); raises InputError with one
    sentence naming the variable otherwise."""
    items = batches if isinstance(batches, list) else [batches]
    if not items:
        raise InputError("%s is empty; give batch sizes such as [1, \"10%%\", \"100%%\"]." % variable)
    sizes = []
    for item in items:
        size = _batch_size(item, fleet)
        if size is None:
            raise InputError("%s has %r, which is neither a number of hosts (1 or more) nor a whole percentage such as "
                             "\"10%%\"; give batch sizes such as [1, \"10%%\", \"100%%\"]." % (variable, item))
        sizes.append(size)
    if fleet and sum(sizes) < fleet:
        raise InputError("%s %s covers %d of the %d hosts of this run; end it with \"100%%\" so that every host "
                         "gets a batch." % (variable, _show(items), sum(sizes), fleet))
    return items


def _batch_size(item, fleet):
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item if item >= 1 else None
    text = str(item).strip()
    if text.endswith("%"):
        percent = int(text[:-1]) if text[:-1].isdigit() else 0  # whole percentages, as Ansible's serial takes
        if not 0 < percent <= 100:
            return None
        return int(fleet * percent / 100.0) or 1
    if text.isdigit() and int(text) >= 1:
        return int(text)
    return None


def _show(items):
    return "[" + ", ".join(str(i) if isinstance(i, int) else "\"%s\"" % i for i in items) + "]"


# the batch and its table --------------------------------------------------------------
def decide(verdicts: dict, batch: list, active: list, staged: bool) -> dict:
    """Which hosts of a batch are taken back: the unhealthy ones, and every host of a staged batch that has one
    (or that lost a host before its gate). verdicts: {host: judge() result} of the active hosts."""
    lost = [h for h in batch if h not in active]
    sick = [h for h in active if not (verdicts.get(h) or {}).get("healthy", False)]
    failed = bool(sick or lost)
    if staged and failed:
        names = ", ".join(sick + lost)
        return {"failed": True, "lost": lost, "sick": sick, "take_back": list(active),
                "why": "its batch failed (%s %s)" % (names, "unhealthy" if not lost else "unhealthy or failed")}
    return {"failed": failed and staged, "lost": lost, "sick": sick, "take_back": sick, "why": "it is unhealthy"}


def outcome(verdict: dict | None, decision: dict, host: str, batch_number: int, *, taken_back: dict | None = None,
            kept: dict | None = None) -> dict:
    """What happened to one host of the batch, for the table (and as the fact wirespeed_rollout)."""
    taken_back, kept = (None if not r or r.get("skipped") else r for r in (taken_back, kept))
    verdict = verdict or {"healthy": False, "problems": ["it failed before its health check"]}
    problems = list(verdict.get("problems") or [])
    if host in decision.get("take_back", []) or host in decision.get("lost", []):
        result = taken_back or {}
        if result.get("unreachable") or result.get("failed"):
            what = "NOT taken back (%s)" % _first_line(result.get("msg"))
        elif result.get("rolled_back"):
            what = "rolled back"
        else:
            what = "rolled back (nothing had changed)"
        why = "unhealthy" if host in decision.get("sick", []) or host in decision.get("lost", []) \
            else decision.get("why", "")
        return {"batch": batch_number, "outcome": what, "kept": False, "why": why, "health": verdict,
                "problems": problems}
    result = kept or {}
    if result.get("failed"):
        return {"batch": batch_number, "outcome": "rolled back", "kept": False, "why": _first_line(result.get("msg")),
                "health": verdict, "problems": problems + [_first_line(result.get("msg"))]}
    if verdict.get("converged"):
        what = "converged (nothing to do)"
    else:
        what = "confirmed" if result.get("confirmed") else ("changed" if result.get("recorded") else "kept")
    return {"batch": batch_number, "outcome": what, "kept": True, "why": "", "health": verdict, "problems": problems}


def _first_line(text):
    return ((text or "").strip().splitlines() or ["no answer"])[0]


TABLE = ("host", "batch", "outcome", "health", "drops/s before -> after", "why")


def table(hostvars, hosts: list) -> list:
    """Lines of one table: per host its batch, what happened to it and its health; hosts the rollout did not
    reach are "untouched"."""
    rows = []
    for host in hosts:
        done = (hostvars.get(host) or {}).get("wirespeed_rollout")
        if not done:
            rows.append((host, "-", "untouched", "-", "-", "the rollout stopped before its batch"))
            continue
        verdict = done.get("health") or {}
        health = "ok" if verdict.get("healthy") else "UNHEALTHY: " + "; ".join(done.get("problems") or ["?"])
        rates = "-" if verdict.get("drop_rate_after") is None else "%s -> %s" % (
            "-" if verdict.get("drop_rate_before") is None else verdict["drop_rate_before"], verdict["drop_rate_after"])
        rows.append((host, done.get("batch", "-"), done.get("outcome", "?"), health, rates, done.get("why") or ""))
    widths = [max(len(str(r[i])) for r in [TABLE, *rows]) for i in range(len(TABLE))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [TABLE, *rows]]


def waiting(hostvars, hosts: list) -> list:
    """The hosts the rollout has not reached yet."""
    return [h for h in hosts if not (hostvars.get(h) or {}).get("wirespeed_rollout")]
