# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Read what runs on a host's interfaces: XDP attachments, our chains, pinned maps, counters."""

from __future__ import annotations

import os
import struct

from . import attach, bpffs, libbpf, reasons, tcattach
from .chain import Chain
from .maps import possible_cpus
from .state import DEFAULT_STATE_DIR, StateStore

XDP_ACTIONS = ("aborted", "drop", "pass", "tx", "redirect")
STATS_MAP = "ws_stats"
REASONS_MAP = "ws_reasons"


def percpu_counters(path, names):
    """{name: {'packets', 'bytes'}} summed over CPUs from a pinned per-CPU array of {packets, bytes}."""
    fd = libbpf.obj_get(path)
    try:
        info = libbpf.map_info(fd)
        ncpu = possible_cpus()
        stride = (info["value_size"] + 7) // 8 * 8
        out = {}
        for index, name in enumerate(names[:info["max_entries"]]):
            raw = libbpf.map_lookup(fd, struct.pack("I", index), stride * ncpu) or b""
            cpus = range(len(raw) // stride)
            out[name] = {"packets": sum(struct.unpack_from("Q", raw, c * stride)[0] for c in cpus),
                         "bytes": sum(struct.unpack_from("Q", raw, c * stride + 8)[0] for c in cpus)}
        return out
    finally:
        os.close(fd)


def action_counters(path):
    """Packets and bytes per XDP action from a pinned ws_stats map."""
    return percpu_counters(path, XDP_ACTIONS)


def reason_counters(path):
    """Packets and bytes per drop reason from a pinned ws_reasons map."""
    return percpu_counters(path, [reasons.NAMES[i] for i in sorted(reasons.NAMES)])


def _prog_summary(prog_id):
    fd = libbpf.prog_fd_by_id(prog_id)
    try:
        info = libbpf.prog_info(fd)
    finally:
        os.close(fd)
    return {"id": prog_id, "name": info["name"], "tag": info["tag"]}


def _pinned_programs(bpffs_path, ifname):
    """{prog id: name} of the programs wirespeed pinned for this interface."""
    idir = bpffs.interface_dir(bpffs_path, ifname)
    pinned = {}
    if not bpffs.mounted_bpffs(bpffs_path) or not os.path.isdir(idir):
        return pinned
    for name in sorted(os.listdir(idir)):
        fd = bpffs.get(os.path.join(idir, name, "prog"))
        if fd is None:
            continue
        try:
            pinned[libbpf.prog_info(fd)["id"]] = name
        finally:
            os.close(fd)
    return pinned


def _program_entry(idir, name, entry, records):
    mdir = os.path.join(idir, name, "maps")
    maps = {m: os.path.join(mdir, m) for m in sorted(os.listdir(mdir))} if os.path.isdir(mdir) else {}
    program = dict(entry, maps=maps, counters=None, record=(records.get(name) or {}).get("current"))
    if STATS_MAP in maps:
        program["counters"] = action_counters(maps[STATS_MAP])
    if REASONS_MAP in maps:
        program["drop_reasons"] = reason_counters(maps[REASONS_MAP])
    return program


def interface_info(ifname, index, bpffs_path=bpffs.DEFAULT_BPFFS, store=None):
    """One interface: XDP attachment and chain in order, TC filters per hook, our programs with maps and counters."""
    xdp = attach.xdp_state(index)
    out = {"ifindex": index, "xdp_mode": xdp["mode"], "xdp_prog": None, "managed": False,
           "chain": [], "tc": {"ingress": [], "egress": []}, "programs": {}}
    if xdp["prog_id"]:
        out["xdp_prog"] = _prog_summary(xdp["prog_id"])
    pinned = _pinned_programs(bpffs_path, ifname)
    idir = bpffs.interface_dir(bpffs_path, ifname)
    records = (store.load()["interfaces"].get(ifname, {}) if store else {})
    if tcattach.clsact_present(index):
        for direction in ("ingress", "egress"):
            for f in tcattach.filters(index, direction):
                name = pinned.get(f["prog_id"]) if f["prog_id"] else None
                entry = dict(f, managed=name is not None, program=name)
                out["tc"][direction].append(entry)
                if name:
                    out["programs"][name] = _program_entry(
                        idir, name, {"name": name, "hook": "tc " + direction, "priority": f["pref"],
                                     "handle": f["handle"], "prog": _prog_summary(f["prog_id"])}, records)
    chain = Chain.open_pinned(bpffs_path, ifname) if bpffs.mounted_bpffs(bpffs_path) else None
    if chain is None:
        return out
    try:
        out["managed"] = xdp["prog_id"] == libbpf.prog_info(chain.root_fd)["id"]
        for position, (slot, priority, prog_id) in enumerate(chain.order()):
            name = pinned.get(prog_id, "slot%d" % slot)
            entry = {"name": name, "hook": "xdp", "slot": slot, "priority": priority, "position": position,
                     "prog": _prog_summary(prog_id) if prog_id else None}
            out["chain"].append(entry)
            if prog_id in pinned:
                out["programs"][name] = _program_entry(idir, name, entry, records)
    finally:
        chain.close()
    return out


def gather(interfaces=None, bpffs_path=bpffs.DEFAULT_BPFFS, state_dir=DEFAULT_STATE_DIR):
    """{interface name: interface_info} for the named interfaces, or all of them."""
    known = attach.interfaces()
    names = interfaces or sorted(known)
    store = StateStore(state_dir)
    out = {}
    for name in names:
        index = known.get(name)
        if index is None:
            index = attach.ifindex(name)  # raises the one-sentence error
        out[name] = interface_info(name, index, bpffs_path, store)
    return out
