"""TC over rtnetlink through pyroute2: the clsact qdisc and direct-action cls_bpf filters.

Why classic cls_bpf rather than TCX: TCX (6.6+) attaches through bpf links
that libbpf only creates from 1.3 on and pyroute2 not at all, its programs
run before every classic filter whatever their priority, and `tc filter
show` does not list them. Operators who run `tc` expect our filters beside
theirs, ordered by pref; cls_bpf gives that on every kernel since 4.5, and
replacing a filter at the same pref and handle swaps the program atomically.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import errno

from ..errors import DatapathError
from .links import NetlinkError, _ipr

PARENTS = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}  # TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_{INGRESS,EGRESS})
ETH_P_ALL = 0x0003
TCA_BPF_FLAG_ACT_DIRECT = 1


def _teach_pyroute2():
    """pyroute2 stops at TCA_BPF_FLAGS; the kernel also reports the program's tag and id (linux/pkt_cls.h)."""
    try:
        from pyroute2.netlink.rtnl.tcmsg import sched_bpf
    except ImportError:
        return
    names = [entry[0] for entry in sched_bpf.options.nla_map]
    if "TCA_BPF_ID" not in names and names[-1] == "TCA_BPF_FLAGS":
        sched_bpf.options.nla_map = tuple(sched_bpf.options.nla_map) + (
            ("TCA_BPF_FLAGS_GEN", "uint32"), ("TCA_BPF_TAG", "hex"), ("TCA_BPF_ID", "uint32"))


_teach_pyroute2()


def clsact_present(index: int) -> bool:
    with _ipr() as ipr:
        return any(q.get_attr("TCA_KIND") == "clsact" for q in ipr.get_qdiscs(index=index))


def add_clsact(index: int, ifname: str) -> None:
    try:
        with _ipr() as ipr:
            ipr.tc("add", "clsact", index)
    except NetlinkError as exc:
        raise DatapathError("creating the clsact qdisc on %r failed: %s; another root qdisc may be in the way "
                            "(`tc qdisc show dev %s`)." % (ifname, exc, ifname)) from exc


def del_clsact(index: int) -> None:
    with _ipr() as ipr:
        ipr.tc("del", "clsact", index)


def filters(index: int, direction: str) -> list[dict]:
    """Every filter at this hook: pref, handle, kind, and for bpf ones name, prog_id, tag, direct_action."""
    out = []
    with _ipr() as ipr:
        messages = ipr.get_filters(index=index, parent=PARENTS[direction])
    for msg in messages:
        options = msg.get_attr("TCA_OPTIONS")
        if options is None:  # the per-pref header entry the kernel sends first
            continue
        classifier = msg.get_attr("TCA_KIND")
        entry = {"pref": msg["info"] >> 16, "handle": msg["handle"], "kind": classifier, "name": None,
                 "prog_id": None, "tag": None, "direct_action": None}
        if classifier == "bpf":
            tag = options.get_attr("TCA_BPF_TAG")
            entry.update(name=options.get_attr("TCA_BPF_NAME"), prog_id=options.get_attr("TCA_BPF_ID"),
                         tag=tag.replace(":", "") if tag else None,
                         direct_action=bool((options.get_attr("TCA_BPF_FLAGS") or 0) & TCA_BPF_FLAG_ACT_DIRECT))
        out.append(entry)
    return out


def set_filter(index: int, direction: str, fd: int, *, pref: int, handle: int, name: str, replace: bool,
               ifname: str) -> None:
    """Add (or atomically replace, same pref and handle) a direct-action bpf filter."""
    try:
        with _ipr() as ipr:
            ipr.tc("replace-filter" if replace else "add-filter", "bpf", index, handle, fd=fd, name=name,
                   parent=PARENTS[direction], prio=pref, protocol=ETH_P_ALL, direct_action=True)
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            raise DatapathError("%s filter priority %d handle %d on %r appeared while wirespeed was adding its "
                                "own; run the task again." % (direction, pref, handle, ifname)) from exc
        raise DatapathError("attaching the tc %s filter on %r failed: %s." % (direction, ifname, exc)) from exc


def del_filter(index: int, direction: str, pref: int, handle: int, kind: str = "bpf") -> None:
    with _ipr() as ipr:
        ipr.tc("del-filter", kind, index, handle, parent=PARENTS[direction], prio=pref, protocol=ETH_P_ALL)
