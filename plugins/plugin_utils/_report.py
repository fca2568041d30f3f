# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Per-host results turned into the tables rollback.yml and status.yml print (filter/report.py hands them over)."""

from __future__ import annotations

COLUMNS = ("host", "interface", "hook", "#", "program", "mode", "passed", "dropped", "health", "insns", "ns/run",
           "drops by reason")
NO_PROGRAM = ("-",) * 6


def _table(rows):
    widths = [max(len(str(r[i])) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [COLUMNS, *rows]]


def failure(result):
    """What kept a host's result from being read (unreachable, failed, absent), as a table cell; None if it is."""
    if not result:
        return "no result (the host was not in this run)"
    if result.get("unreachable"):
        return "UNREACHABLE: %s" % ((result.get("msg") or "").strip().splitlines() or ["no answer"])[0]
    if result.get("failed"):
        return "FAILED: %s" % result.get("msg")
    return None


def health_cell(program, generic_unexpected=False):
    """'ok', or what is wrong with one program: ABORTED=<packets>, generic (when native was possible)."""
    health = (program or {}).get("health")
    if not health:
        return "-"
    wrong = (["ABORTED=%d" % health["aborted"]] if health.get("aborted") else []) + \
        (["GENERIC"] if generic_unexpected else [])
    return ",".join(wrong) or "ok"


def _counter_cells(program, generic_unexpected=False, avg_ns=None):
    """passed, dropped, health, instructions, ns per run and drops by reason of one of our programs (XDP or TC:
    ws_stats reads the same). XDP programs are tail calls the kernel does not time: their ns/run is avg_ns, the
    whole chain's."""
    counters = (program or {}).get("counters") or {}
    health = (program or {}).get("health") or {}
    reasons = {k: v["packets"] for k, v in ((program or {}).get("drop_reasons") or {}).items() if v["packets"]}
    avg_ns = health.get("avg_ns") if avg_ns is None else avg_ns
    return (counters.get("pass", {}).get("packets", "-"), counters.get("drop", {}).get("packets", "-"),
            health_cell(program, generic_unexpected), health.get("xlated_insns") or "-",
            "-" if avg_ns is None else "%.0f" % avg_ns,
            ", ".join(["%s=%d" % kv for kv in sorted(reasons.items())]
                      + ["%s=%d" % kv for kv in ((program or {}).get("outcomes") or {}).items()]) or "-")


def _queue_rows(host, ifname, name, program):
    """One row per RX queue of a steering program (af_xdp): whether a socket is attached, the matching packets
    that fell back to the kernel for want of one (passed) and those redirected to it."""
    return [(host, ifname, "xsk", "q%d" % q["queue"], "%s: %s" % (name, "socket" if q["socket"] else "no socket"),
             "-", q["fallback"], "-", "-", "-", "-", "redirected=%d" % q["redirected"])
            for q in (program or {}).get("xsk_queues") or []]


def _backend_rows(host, ifname, name, program):
    """One row per backend of a load balancer (service -> backend, state): the packets sent to it (passed)."""
    return [(host, ifname, "lb", "-", "%s: %s -> %s (%s%s)" % (
        name, b["service"], b["backend"], b["state"],
        ", %s" % b["encap"] if b.get("encap", "none") != "none" else ""), "-",
        b["packets"], "-", "-", "-", "-", "-") for b in (program or {}).get("backends") or []]


def _program_rows(host, ifname, iface):
    rows = []
    programs = iface.get("programs") or {}
    generic = bool(iface.get("xdp_generic_unexpected"))
    chain_ns = (iface.get("xdp_health") or {}).get("avg_ns")
    for entry in iface.get("chain") or []:
        rows.append((host, ifname, "xdp", entry["position"] + 1, entry["name"], iface.get("xdp_mode") or "-",
                     *_counter_cells(programs.get(entry["name"]), generic, chain_ns)))
        rows.extend(_queue_rows(host, ifname, entry["name"], programs.get(entry["name"])))
        rows.extend(_backend_rows(host, ifname, entry["name"], programs.get(entry["name"])))
    for direction in ("ingress", "egress"):
        for f in (iface.get("tc") or {}).get(direction) or []:
            name = f.get("program")
            cells = _counter_cells(programs.get(name)) if name else NO_PROGRAM
            rows.append((host, ifname, "tc " + direction, f.get("pref"),
                         name or "%s (not wirespeed)" % (f.get("name") or f.get("kind")), "-", *cells))
    if iface.get("xdp_prog") and not iface.get("managed"):
        rows.append((host, ifname, "xdp", "-", "%s (not wirespeed)" % iface["xdp_prog"]["name"],
                     iface.get("xdp_mode"), *NO_PROGRAM))
    return rows


def status_table(hostvars, hosts):
    """Lines of one table: per host and interface, programs in order with mode and drops by reason."""
    rows = []
    for host in hosts:
        result = (hostvars.get(host) or {}).get("wirespeed_status")
        problem = failure(result)
        if problem:
            rows.append((host, "-", "-", "-", problem) + ("",) * (len(COLUMNS) - 5))
            continue
        found = False
        for ifname, iface in sorted((result.get("datapath") or {}).items()):
            got = _program_rows(host, ifname, iface)
            rows.extend(got)
            found = found or bool(got)
        if not found:
            rows.append((host, "-", "-", "-", "no XDP or TC programs") + ("",) * (len(COLUMNS) - 5))
    return _table(rows)


def status_problems(hostvars, hosts):
    """One line per thing wrong in the fleet, '<host>: <sentence>': what datapath_info found (XDP_ABORTED
    packets, an unexpected generic mode), and hosts that could not be read. Empty when the fleet is healthy."""
    lines = []
    for host in hosts:
        result = (hostvars.get(host) or {}).get("wirespeed_status")
        problem = failure(result)
        if problem:
            lines.append("%s: %s" % (host, problem))
            continue
        lines.extend("%s: %s" % (host, p) for p in result.get("problems") or [])
    return lines


def rollback_report(result, host):
    """Lines saying what one host's rollback did."""
    problem = failure(result)
    if problem:
        return ["%s: %s" % (host, problem)]
    if result.get("restored") is None:
        return ["%s: %s" % (host, result.get("msg") or "nothing to roll back to")]
    would = result.get("check_mode")
    head = "%s: %s" % (host, ("would remove" if would else "removed") + " every wirespeed program"
                       if result["restored"] == "none" else ("would restore" if would else "restored")
                       + " the datapath checkpointed at %s" % result["restored"])
    if not result.get("changed"):
        head += " (it was already in place)"
    return [head] + ["  now: %s" % line for line in result.get("after") or []] + \
        ["  did: %s" % a for a in result.get("actions") or []]


def rollback_summary(hostvars, hosts):
    """One line per host: restored, nothing to do, unreachable or failed."""
    return [rollback_report((hostvars.get(h) or {}).get("wirespeed_rollback"), h)[0] for h in hosts]
