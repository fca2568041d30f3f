"""What runs on a host's interfaces, asked of every hook, with our programs' maps and per-CPU counters."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ipaddress
import os
import struct
import time

from . import facts, hooks, prefilter, reasons
from .errors import DatapathError
from .kernel import bpffs, libbpf, links, xsks
from .kernel import netns as netns_
from .kernel.maps import HASH, LPM_TRIE, LRU_HASH, LRU_PERCPU_HASH, PERCPU_HASH, PinnedMap, percpu_sum, possible_cpus
from .record.store import DEFAULT_STATE_DIR, StateStore
from .types.map_types import MapTypes

XDP_ACTIONS = ("aborted", "drop", "pass", "tx", "redirect")
STATS_MAP = "ws_stats"
REASONS_MAP = "ws_reasons"
BPF_STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
# per-CPU u64 arrays of a program's own outcomes, by index (files/bpf/l2_forwarder.bpf.c)
OUTCOME_MAPS = {"l2_counters": ("forwarded", "flooded", "passed", "unknown")}
XSK_STATS_MAP = "xsk_queue_stats"  # per RX queue: redirected, fallback (files/bpf/af_xdp.bpf.c)
XSK_MAP = "xsks"
XSK_QUEUES = 64
DENY_PREFIX = "deny"  # maps whose 8-byte values count the packets each entry dropped (files/bpf/firewall.bpf.c)


def percpu_counters(path: str, names: tuple[str, ...] | list[str]) -> dict[str, dict[str, int]]:
    """{name: {'packets', 'bytes'}} summed over CPUs from a pinned per-CPU array of {packets, bytes}."""
    fd = libbpf.obj_get(path)
    try:
        info = libbpf.map_info(fd)
        ncpu = possible_cpus()
        stride = (info["value_size"] + 7) // 8 * 8
        out = {}
        for index, name in enumerate(names[:info["max_entries"]]):
            raw = libbpf.map_lookup(fd, struct.pack("I", index), stride * ncpu) or b""
            out[name] = _packets_bytes(raw, stride)
        return out
    finally:
        os.close(fd)


def _packets_bytes(raw: bytes, stride: int) -> dict[str, int]:
    """A struct ws_action_stats {packets, bytes} summed over the CPUs' copies in raw."""
    return {"packets": percpu_sum(raw, stride), "bytes": percpu_sum(raw, stride, 8)}


def action_counters(path: str) -> dict[str, dict[str, int]]:
    """Packets and bytes per XDP action from a pinned ws_stats map."""
    return percpu_counters(path, XDP_ACTIONS)


def reason_counters(path: str) -> dict[str, dict[str, int]]:
    """Packets and bytes per drop reason from a pinned ws_reasons map."""
    return percpu_counters(path, [reasons.NAMES[i] for i in sorted(reasons.NAMES)])


def outcome_counters(path: str, names: tuple[str, ...]) -> dict[str, int]:
    """{name: packets} summed over CPUs from a pinned per-CPU array of u64 counters."""
    with PinnedMap(path) as pinned:
        raw = pinned.dump()
        out = {}
        for index, name in enumerate(names):
            out[name] = percpu_sum(raw.get(struct.pack("I", index), b""), pinned.stride)
    return out


LB_BACKEND = struct.Struct("16s6sBxII")  # struct lb_backend of files/bpf/load_balancer.bpf.c
LB_STATES = {1: "active", 2: "draining"}
LB_VIP = struct.Struct("!16sHBx")  # struct lb_vip: address, port (network order), protocol
LB_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp"}


def _address(raw):
    ip = ipaddress.ip_address(raw)
    return str(ip.ipv4_mapped or ip)


def _services(path):
    """{service index: 'vip proto/port'} from the load balancer's lb_services map."""
    out = {}
    with PinnedMap(path) as services:
        for key, value in services.dump().items():
            addr, port, proto = LB_VIP.unpack_from(key)
            name = LB_PROTOCOLS.get(proto, str(proto))
            where = name if name == "icmp" else "%s/%d" % (name, port)
            out[struct.unpack_from("I", value)[0]] = "%s %s" % (_address(addr), where)
    return out


def backend_counters(maps: dict) -> list[dict]:
    """The load balancer's backends with packets and bytes sent to each (maps lb_backends and lb_stats)."""
    out = []
    names = _services(maps["lb_services"]) if "lb_services" in maps else {}
    with PinnedMap(maps["lb_backends"]) as backends, PinnedMap(maps["lb_stats"]) as stats:
        found = []
        for key, raw in sorted(backends.dump().items()):
            addr, _mac, flags, _weight, service = LB_BACKEND.unpack_from(raw)
            if flags:
                found.append((struct.unpack("I", key)[0], addr, flags, service))
        for index, addr, flags, service in found:
            raw = libbpf.map_lookup(stats.fd, struct.pack("I", index), stats.slot_size) or b""
            out.append({"backend": _address(addr), "state": LB_STATES.get(flags, str(flags)),
                        "service": names.get(service, str(service)), **_packets_bytes(raw, stats.stride)})
    return out


def bpf_stats_enabled() -> bool:
    """Whether the kernel counts runs and run time of every BPF program (sysctl kernel.bpf_stats_enabled)."""
    try:
        with open(BPF_STATS_SYSCTL, encoding="ascii") as fh:
            return fh.read().strip() not in ("", "0")
    except OSError:
        return False


def program_health(prog_id: int | None, counters: dict | None, stats_on: bool, timed: bool = True) -> dict:
    """What says whether one program works: its XDP_ABORTED count (from its ws_stats, None without one), its size
    as the kernel runs it (xlated instructions, jited bytes, instructions the verifier walked) and, while kernel
    BPF stats are on, how often it ran and its average nanoseconds per run. The kernel times only programs it
    enters itself, not tail calls: a chained program is not `timed` (its chain's root is)."""
    out = {"aborted": counters["aborted"]["packets"] if counters and "aborted" in counters else None,
           "xlated_insns": None, "jited_bytes": None, "verified_insns": None,
           "bpf_stats": stats_on, "run_cnt": None, "avg_ns": None}
    if prog_id:
        fd = libbpf.prog_fd_by_id(prog_id)
        try:
            prog = libbpf.prog_info(fd)
        finally:
            os.close(fd)
        out.update(xlated_insns=prog["xlated_insns"], jited_bytes=prog["jited_bytes"],
                   verified_insns=prog["verified_insns"])
        if stats_on and timed:
            out.update(run_cnt=prog["run_cnt"],
                       avg_ns=round(prog["run_time_ns"] / prog["run_cnt"], 1) if prog["run_cnt"] else None)
    return out


def top_denied(maps: dict[str, str], count: int) -> list[dict]:
    """The `count` entries of a program's deny maps (hash or LPM maps named deny*, 8-byte hit counters) that
    dropped the most packets: [{map, entry (as people write it), packets}], most first, entries with 0 left out."""
    hits = []
    for map_name, path in sorted(maps.items()):
        if not map_name.startswith(DENY_PREFIX):
            continue
        with PinnedMap(path) as pinned:
            if pinned.type not in (HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH, LPM_TRIE) or pinned.value_size != 8:
                continue
            counted = [(percpu_sum(raw, pinned.stride), key) for key, raw in pinned.dump().items()]
            best = sorted((c for c in counted if c[0]), reverse=True)[:count]
            if best:
                key_codec = MapTypes(pinned).key
                hits += [{"map": map_name, "entry": key_codec.decode(key), "packets": n} for n, key in best]
    return sorted(hits, key=lambda h: -h["packets"])[:count]


def xsk_queues(ifname: str, index: int, maps: dict[str, str]) -> list[dict]:
    """Per RX queue of a steering program (af_xdp): whether its XSKMAP holds a socket for the queue, the packets
    redirected to it or that fell back to the kernel for want of one and, where the kernel has xdp_diag, how many
    AF_XDP sockets are bound to the queue (None without it)."""
    count = min(facts.rx_queues(ifname) or 1, XSK_QUEUES)
    counted = percpu_counters(maps[XSK_STATS_MAP], [str(q) for q in range(count)])  # {redirected, fallback},
    present = xsks.in_map(maps[XSK_MAP], range(count)) if XSK_MAP in maps else {}  # read as {packets, bytes}
    on_queue = xsks.bound(index, count)
    return [{"queue": q, "socket": present.get(q, False),
             "bound": None if on_queue is None else len(on_queue.get(q) or []),
             "redirected": counted[str(q)]["packets"], "fallback": counted[str(q)]["bytes"]}
            for q in range(count)]


def _program_entry(idir, name, entry, record, stats_on=False, top=0, link=None):
    mdir = os.path.join(idir, name, "maps")
    maps = {m: os.path.join(mdir, m) for m in sorted(os.listdir(mdir))} if os.path.isdir(mdir) else {}
    program = dict(entry, maps=maps, counters=None, record=record.to_dict() if record else None)
    if STATS_MAP in maps:
        program["counters"] = action_counters(maps[STATS_MAP])
    if REASONS_MAP in maps:
        program["drop_reasons"] = reason_counters(maps[REASONS_MAP])
    for map_name, names in OUTCOME_MAPS.items():
        if map_name in maps:
            program["outcomes"] = outcome_counters(maps[map_name], names)
    if "lb_backends" in maps and "lb_stats" in maps:
        program["backends"] = backend_counters(maps)
    program["health"] = program_health((entry.get("prog") or {}).get("id"), program["counters"], stats_on,
                                       timed=entry.get("hook") != "xdp")
    if top:
        program["top_denied"] = top_denied(maps, top)
    if prefilter.INDEX in maps:
        program["prefilter"] = prefilter.Prefilter(mdir).state()
    if XSK_STATS_MAP in maps and link:
        program["xsk_queues"] = xsk_queues(link[0], link[1], maps)
    return program


def interface_info(ifname: str, index: int, bpffs_path: str = bpffs.DEFAULT_BPFFS,
                   store: StateStore | None = None, stats_on: bool | None = None, top: int = 0,
                   netns: str | None = None) -> dict:
    """One interface: what each hook runs there (XDP chain, TC filters), our programs with maps, counters and
    health. ifname is the engine's key (`<netns label>:<interface>` for one in netns)."""
    out = {"ifindex": index, "programs": {}}
    if netns:
        out["netns"] = netns
    stats_on = bpf_stats_enabled() if stats_on is None else stats_on
    pinned = bpffs.pinned_programs(bpffs_path, ifname) if bpffs.mounted_bpffs(bpffs_path) else {}
    idir = bpffs.interface_dir(bpffs_path, ifname)
    for hook in hooks.HOOKS.values():
        for name, entry in hook.inspect(ifname, index, bpffs_path, pinned, out, netns).items():
            record = store.current(ifname, name) if store else None
            link = (ifname, index) if not netns else None  # AF_XDP queues are read in this namespace
            out["programs"][name] = _program_entry(idir, name, entry, record, stats_on, top, link)
    if out.get("xdp_prog"):  # the attached XDP program (our chain's root: every packet through the whole chain)
        out["xdp_health"] = program_health(out["xdp_prog"]["id"], None, stats_on)
    return out


def namespaces(state_dir: str = DEFAULT_STATE_DIR) -> dict[str, str]:
    """{interface key: network namespace} of the recorded programs on interfaces in other namespaces."""
    return {key: record.netns for key, _name, record in StateStore(state_dir).records() if record.netns}


def _indexes(keys, netns_of):
    """{key: ifindex or None} of interface keys, each looked up in its namespace (one netlink dump per namespace)."""
    by_ns = {}
    for key in keys:
        label, ifname = netns_.split(key)
        ns = (netns_of or {}).get(key) or label
        by_ns.setdefault(ns, []).append((key, ifname))
    out = {}
    for ns, members in by_ns.items():
        try:
            known = links.interfaces(ns)
        except DatapathError:  # the namespace is gone: so are its interfaces
            known = {}
        out.update({key: known.get(ifname) for key, ifname in members})
    return out


def attachments(ifnames, bpffs_path: str = bpffs.DEFAULT_BPFFS, netns_of: dict | None = None) -> dict:
    """What is attached where on the named interfaces, without counters: {interface: {ifindex, xdp_mode, xdp_prog,
    chain: [[name, slot, prog id]], tc: {direction: [[pref, handle, prog id]]}}}, None for a missing interface.
    A name may be a key `<netns label>:<interface>`; netns_of maps such keys to their namespace (default: the
    label under /run/netns)."""
    indexes = _indexes(sorted(set(ifnames)), netns_of)
    out = {}
    for ifname in sorted(set(ifnames)):
        index = indexes.get(ifname)
        if index is None:
            out[ifname] = None
            continue
        ns = (netns_of or {}).get(ifname) or netns_.split(ifname)[0]
        pinned = bpffs.pinned_programs(bpffs_path, ifname) if bpffs.mounted_bpffs(bpffs_path) else {}
        seen = {}
        for hook in hooks.HOOKS.values():
            hook.inspect(ifname, index, bpffs_path, pinned, seen, ns)
        out[ifname] = {
            "ifindex": index, "xdp_mode": seen.get("xdp_mode"), "xdp_prog": (seen.get("xdp_prog") or {}).get("id"),
            "chain": [[e["name"], e["slot"], (e["prog"] or {}).get("id")] for e in seen.get("chain") or []],
            "tc": {d: [[f.get("pref"), f.get("handle"), f.get("prog_id")] for f in fs]
                   for d, fs in sorted((seen.get("tc") or {}).items())}}
    return out


def gather(interfaces: list[str] | None = None, bpffs_path: str = bpffs.DEFAULT_BPFFS,
           state_dir: str = DEFAULT_STATE_DIR, top: int = 0) -> dict[str, dict]:
    """{interface name: interface_info} for the named interfaces, or all of them; with top, each program's `top`
    deny entries that dropped the most."""
    known = links.interfaces()
    in_netns = namespaces(state_dir)
    names = interfaces or sorted(known) + sorted(in_netns)
    store = StateStore(state_dir)
    stats_on = bpf_stats_enabled()
    out = {}
    for name in names:
        label, ifname = netns_.split(name)
        ns = in_netns.get(name) or label
        if ns is None:
            index = known.get(name)
            if index is None:
                index = links.ifindex(name)  # raises the one-sentence error
        else:
            try:
                index = links.ifindex(ifname, ns)
            except DatapathError:
                if interfaces:  # asked for by name: say what is wrong
                    raise
                continue  # a recorded namespace that is gone: nothing runs there any more
        out[name] = interface_info(name, index, bpffs_path, store, stats_on, top, ns)
    return out


def sample(state_dir: str = DEFAULT_STATE_DIR) -> dict:
    """The host's counters at one moment, for health gates: XDP_ABORTED and drops (in total and by reason)
    summed over every program this host runs, with the time they were read (seconds since the epoch)."""
    out = {"at": time.time(), "aborted": 0, "dropped": 0, "reasons": {}, "programs": 0}
    for ifname, name, record in StateStore(state_dir).records():
        mdir = os.path.join(record.pin_path or "", "maps")
        if not record.pin_path or not os.path.isdir(mdir):
            continue
        out["programs"] += 1
        if os.path.exists(os.path.join(mdir, STATS_MAP)):
            counters = action_counters(os.path.join(mdir, STATS_MAP))
            out["aborted"] += counters["aborted"]["packets"]
            out["dropped"] += counters["drop"]["packets"]
        if os.path.exists(os.path.join(mdir, REASONS_MAP)):
            for reason, counted in reason_counters(os.path.join(mdir, REASONS_MAP)).items():
                if counted["packets"]:
                    key = "%s/%s: %s" % (ifname, name, reason)
                    out["reasons"][key] = out["reasons"].get(key, 0) + counted["packets"]
    return out


def problems(datapath: dict, links: dict[str, dict], generic_ok: list[str] | tuple = ()) -> list[str]:
    """Sentences, one per thing that is wrong on the host's interfaces: a program with XDP_ABORTED packets, an
    interface whose XDP runs in generic mode though its driver runs XDP natively (unless listed in generic_ok).
    Pure but for marking each interface's xdp_generic_unexpected in datapath (gather()'s answer); links is
    {interface: {xdp_native, driver}} (native_support())."""
    out = []
    for ifname, iface in sorted(datapath.items()):
        link = links.get(ifname) or {}
        iface["xdp_generic_unexpected"] = bool(iface.get("xdp_mode") == "generic" and link.get("xdp_native")
                                               and ifname not in generic_ok)
        if iface["xdp_generic_unexpected"]:
            out.append("%s: XDP runs in generic mode though its driver (%s) runs XDP natively; attach with mode "
                       "native, or list %s in generic_ok if generic is meant." % (ifname, link.get("driver"), ifname))
        for name, program in sorted((iface.get("programs") or {}).items()):
            aborted = (program.get("health") or {}).get("aborted") or 0
            if aborted:
                out.append("%s/%s: %d packets ended in XDP_ABORTED, a program error (the xdp:xdp_exception "
                           "tracepoint shows where)." % (ifname, name, aborted))
    return out


def native_support() -> dict[str, dict]:
    """{interface: {xdp_native: True/False/None (not known), driver: driver or link kind}}."""
    out = {}
    for name, (_index, kind) in links.link_kinds().items():
        driver = facts.driver(name)
        out[name] = {"xdp_native": facts.xdp_native(kind, driver), "driver": driver or kind or "hardware"}
    return out
