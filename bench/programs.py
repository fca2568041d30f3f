# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-program cost in ns/packet through BPF_PROG_TEST_RUN, side by side in one run.

    python bench/programs.py [--runs 11] [--repeat 100000]

Each figure is the median of --runs test runs of --repeat packets (the
kernel's own per-packet average), for a hit and a miss where it matters,
beside a bare XDP_DROP program (the harness floor). The firewall is measured
with 10 deny addresses and again with 100k addresses + 10k CIDRs, to show the
cost is flat in the list size. Target: every program within 50 ns of the floor
measured in the same run (harness + one hash lookup + one clock read).

Reference rows measure single kernel operations (bench/bpf/call_costs.bpf.c)
in the same run: a program's cost is roughly the floor plus its map lookups
and clock reads, so they show what a figure is made of on this machine.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "collections"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "bench"))

import results  # noqa: E402
from netlab import netns  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs, libbpf  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program import compile as bpfcc  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.bpf_object import BpfObject  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.config import write_config  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _maglev, _qos  # noqa: E402

INCLUDE = os.path.join(REPO, "files", "bpf", "include")
ABOVE_FLOOR_NS = 50.0  # the target: ns over the floor (harness + one hash lookup + one clock read) of the same run
MIRROR_CLONE = "mirror (TC): matched, copied"  # the kernel's skb clone: exempt from the target
BOTH_CPUS = "egress_ratelimit: one bucket, both CPUs charging it"  # a CAS contended by construction: shown only
EXEMPT = (MIRROR_CLONE, BOTH_CPUS)
OPERATIONS = ("one hash lookup (miss)", "one LPM trie lookup (empty)", "one array lookup", "bpf_ktime_get_ns()",
              "bpf_ktime_get_coarse_ns()")  # the op numbers of bench/bpf/call_costs.bpf.c


# Prefix lengths of a deny list of networks, shaped like public threat feeds (DROP lists, firewall level-1 sets):
# mostly /24, a tail of wider allocations down to /12 and some host-sized blocks.
PREFIX_MIX = ((12, 2), (13, 3), (14, 5), (15, 8), (16, 30), (17, 20), (18, 25), (19, 40), (20, 60), (21, 60),
              (22, 120), (23, 100), (24, 450), (25, 15), (26, 12), (27, 10), (28, 10), (29, 10), (30, 8), (32, 12))


def deny_nets(rng, count, avoid=(198,)):
    """`count` distinct IPv4 CIDRs with PREFIX_MIX's lengths, first octet 100-199 but never one of `avoid`
    (the clean sources the benches send from stay outside every network)."""
    lengths, weights = zip(*PREFIX_MIX)
    out = set()
    while len(out) < count:
        plen = rng.choices(lengths, weights)[0]
        first = rng.choice([o for o in range(100, 200) if o not in avoid])
        addr = (first << 24 | rng.randrange(1 << 24)) & (0xFFFFFFFF << (32 - plen))
        out.add("%s/%d" % (ipaddress.IPv4Address(addr), plen))
    return sorted(out)


def frame(src, proto=UDP, dport=53, dst="198.18.0.1"):
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst=dst)
                 / proto(dport=dport) / (b"x" * 18))


class Timing(float):
    """ns/packet of a program, with the instructions the verifier walked to load it (its size, for ablations)."""

    insns = None


class Loaded:
    """A program loaded (not attached) with its maps pinned in a private bpffs directory."""

    def __init__(self, src, pin_dir, config=None, prog_type=libbpf.PROG_TYPE_XDP, defines=None):
        self.obj = BpfObject(bpfcc.compile_source(src, [INCLUDE], defines)["path"])
        self.obj.select(None, prog_type)
        write_config(self.obj, config or {})
        self.obj.load()
        self.maps = {}
        os.makedirs(pin_dir, exist_ok=True)
        for name in self.obj.maps():
            path = os.path.join(pin_dir, name)
            libbpf.obj_pin(self.obj.map_fd(name), path)
            self.maps[name] = path

    def allow_like_the_role(self, entries=("192.0.2.0/24",)):
        """Write the allow list as the roles do on every run (a management network; the roles' preflight always
        syncs allow_v4, and the sync builds the allow index): the state a deployed program is in. Returns self."""
        if "allow_v4" in self.maps:
            mapsync.sync(self.maps["allow_v4"], entries=list(entries), key_type="ipv4_cidr", diff=False)
        return self

    def ns(self, packet, runs, repeat):
        out = Timing(statistics.median(libbpf.test_run(self.obj.prog_fd, packet, repeat)[2] for _i in range(runs)))
        out.insns = libbpf.prog_info(self.obj.prog_fd)["verified_insns"]
        return out


def mirror_rows(root, args):
    """The TC mirror in a private namespace: a non-matching packet, and a matching one cloned to a veth.

    The copies go to a veth whose peer is down, so they are made and dropped at once:
    no traffic leaves the namespace.
    """
    ns = "wsbm%05x" % random.randrange(1 << 20)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "cp0", "type", "veth", "peer", "name", "cp1"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "cp0", "up"], check=True)
        mirror = Loaded(os.path.join(REPO, "files", "bpf", "mirror.bpf.c"), os.path.join(root, "mirror"),
                        {"match_proto": 17, "ports": [7200]}, libbpf.PROG_TYPE_SCHED_CLS)
        with netns(ns):
            mapsync.sync(mirror.maps["target"], entries={0: "cp0"}, key_type="u32", value_type="ifindex",
                         diff=False)
            return [("mirror (TC): other traffic", mirror.ns(frame("198.18.0.9"), args.runs, args.repeat)),
                    (MIRROR_CLONE, mirror.ns(frame("198.18.0.9", UDP, 7200), args.runs, args.repeat))]
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def both_cpus(loaded, packet, args):
    """ns/packet while two CPUs run the program on the same packet at once (the bucket's CAS contended)."""
    cpus, results = sorted(os.sched_getaffinity(0))[:2], []

    def run(cpu):
        os.sched_setaffinity(0, {cpu})  # this thread only
        results.append(loaded.ns(packet, args.runs, args.repeat))

    threads = [threading.Thread(target=run, args=(cpu,)) for cpu in cpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return max(results)


def tc_rows(root, args):
    """The three TC traffic programs, loaded and not attached (nothing but the bench's packets reaches them)."""
    rows = []
    erl = Loaded(os.path.join(REPO, "files", "bpf", "egress_ratelimit.bpf.c"), os.path.join(root, "erl"), {},
                 libbpf.PROG_TYPE_SCHED_CLS)
    rule = {"rate": 10 ** 12, "burst": 1 << 30, "per": 0, "id": 1}  # never over: every packet is charged
    mapsync.sync(erl.maps["rules_v4"], entries=[{"key": "198.18.0.0/24", "value": rule}], diff=False)
    outside = frame("198.18.0.9", UDP, 53, "198.51.100.1")
    rows.append(("egress_ratelimit: destination in no rule", erl.ns(outside, args.runs, args.repeat)))
    rows.append(("egress_ratelimit: charged to a bucket (passes)", erl.ns(frame("198.18.0.9"), args.runs,
                                                                          args.repeat)))
    if len(os.sched_getaffinity(0)) >= 2:
        rows.append((BOTH_CPUS, both_cpus(erl, frame("198.18.0.9"), args)))
    dscp = Loaded(os.path.join(REPO, "files", "bpf", "dscp_marking.bpf.c"), os.path.join(root, "dscp"), {},
                  libbpf.PROG_TYPE_SCHED_CLS)
    rules = _qos.dscp_rules([{"proto": "udp", "port": 5060, "dscp": "EF"},
                             {"proto": "udp", "port": "16384-32767", "dscp": "EF"}], "rules")["egress"]
    mapsync.sync(dscp.maps["rules"], entries=rules, diff=False)
    rows.append(("dscp_marking: unmatched port", dscp.ns(frame("198.18.0.9", UDP, 53), args.runs, args.repeat)))
    rows.append(("dscp_marking: matched, DSCP rewritten + checksum",
                 dscp.ns(frame("198.18.0.9", UDP, 20000), args.runs, args.repeat)))
    cl = Loaded(os.path.join(REPO, "files", "bpf", "conn_limiter.bpf.c"), os.path.join(root, "cl"),
                {"interval_ns": 1, "burst": 1 << 20}, libbpf.PROG_TYPE_SCHED_CLS).allow_like_the_role()
    syn = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="203.0.113.1")
                / TCP(dport=80, flags="S"))
    ack = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="203.0.113.1")
                / TCP(dport=80, flags="A"))
    rows.append(("conn_limiter: TCP SYN, charged (passes)", cl.ns(syn, args.runs, args.repeat)))
    rows.append(("conn_limiter: established TCP", cl.ns(ack, args.runs, args.repeat)))
    rows.append(("conn_limiter: UDP of a known flow", cl.ns(frame("198.18.0.9"), args.runs, args.repeat)))
    return rows


def load_balancer(pin_dir, vip, backends, conn_table=1, size=65537, port=53, macs=None, encap=None,
                  encap_source=None):
    """load_balancer.bpf.c loaded with one UDP service on vip:port over `backends` (addresses); MACs made up
    unless given; with encap (ipip), the service encapsulates (MACs are then the next hop's)."""
    config = {"conn_table": conn_table}
    if encap_source:
        config["encap_v4_saddr"] = encap_source
    lb = Loaded(os.path.join(REPO, "files", "bpf", "load_balancer.bpf.c"), pin_dir, config)
    macs = macs or ["02:00:00:00:01:%02x" % i for i in range(len(backends))]
    services = [{"vip": vip, "proto": "udp", "port": port, "encap": encap or "none",
                 "backends": [{"address": a, "mac": m} for a, m in zip(backends, macs)]}]
    ent = _maglev.entries(_maglev.check(services, size=size))
    mapsync.sync(lb.maps["lb_backends"], entries=ent["backends"], diff=False)
    for t in ent["tables"]:
        mapsync.sync_packed(lb.maps["lb_maglev"], t["table"], t["index"] * _maglev.MAX_SIZE, t["digest"],
                            diff=False)
    mapsync.sync(lb.maps["lb_services"], entries=ent["services"], diff=False)
    return lb


def lb_rows(root, args):
    """The balancer: a packet to the service through the Maglev table (no connection table), the same with the
    connection table holding the flow, and a packet to no service (passes)."""
    backends = ["198.18.1.%d" % i for i in range(1, 11)]
    table_only = load_balancer(os.path.join(root, "lbt"), "198.18.0.1", backends, conn_table=0)
    with_conns = load_balancer(os.path.join(root, "lbc"), "198.18.0.1", backends, conn_table=1)
    hit = frame("198.18.0.9")
    with_conns.ns(hit, 1, 1)  # the flow is in the connection table from now on
    other = frame("198.18.0.9", UDP, 80, "198.18.0.2")
    return [("load_balancer: new flow, Maglev table (10 backends)", table_only.ns(hit, args.runs, args.repeat)),
            ("load_balancer: flow in the connection table", with_conns.ns(hit, args.runs, args.repeat)),
            ("load_balancer: not a service (passes)", with_conns.ns(other, args.runs, args.repeat))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=100000)
    args = parser.parse_args()
    bpffs.ensure_bpffs()
    root = os.path.join(bpffs.DEFAULT_BPFFS, "wsbench%05x" % random.randrange(1 << 20))
    rows = []
    try:
        bare = Loaded(os.path.join(REPO, "bench", "bpf", "bare_drop.bpf.c"), os.path.join(root, "bare"))
        floor = bare.ns(frame("198.18.0.9"), args.runs, args.repeat)
        rows.append(("bare XDP_DROP (harness floor)", floor))
        for op, label in enumerate(OPERATIONS, start=1):
            ref = Loaded(os.path.join(REPO, "bench", "bpf", "call_costs.bpf.c"), os.path.join(root, "op%d" % op),
                         {"op": op})
            rows.append(("ref: " + label, ref.ns(frame("198.18.0.9"), args.runs, args.repeat)))
        dp = Loaded(os.path.join(REPO, "files", "bpf", "examples", "drop_port.bpf.c"), os.path.join(root, "dp"),
                    {"drop_port": 8080})
        rows.append(("drop_port: miss (passes)", dp.ns(frame("198.18.0.9"), args.runs, args.repeat)))
        rows.append(("drop_port: hit (drops)", dp.ns(frame("198.18.0.9", UDP, 8080), args.runs, args.repeat)))
        rng = random.Random(7)
        big = sorted({str(ipaddress.IPv4Address(0x0B000000 + rng.randrange(1 << 24))) for _i in range(100000)})
        nets = deny_nets(rng, 10000)
        for label, addrs, cidrs in (("10 addresses", big[:10], []), ("100k addresses + 10k CIDRs", big, nets)):
            fw = Loaded(os.path.join(REPO, "files", "bpf", "firewall.bpf.c"),
                        os.path.join(root, "fw%d" % len(addrs))).allow_like_the_role()
            mapsync.sync(fw.maps["deny_v4"], entries=addrs, key_type="ipv4", diff=False)
            if cidrs:
                mapsync.sync(fw.maps["deny_net_v4"], entries=cidrs, key_type="ipv4_cidr", diff=False)
            rows.append(("firewall, %s: listed source (drop)" % label,
                         fw.ns(frame(addrs[len(addrs) // 2]), args.runs, args.repeat)))
            rows.append(("firewall, %s: clean source (pass)" % label,
                         fw.ns(frame("198.18.0.9"), args.runs, args.repeat)))
        sl = Loaded(os.path.join(REPO, "files", "bpf", "ssh_limiter.bpf.c"), os.path.join(root, "sl"),
                    {"ports": [22]}).allow_like_the_role()
        syn = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="203.0.113.1")
                    / TCP(dport=22, flags="S"))
        rows.append(("ssh_limiter: SYN from a banned source", sl.ns(syn, args.runs, args.repeat)))
        rows.append(("ssh_limiter: other traffic", sl.ns(frame("198.18.0.9"), args.runs, args.repeat)))
        wg = Loaded(os.path.join(REPO, "files", "bpf", "wireguard_filter.bpf.c"), os.path.join(root, "wg"),
                    {"ports": [51820]}).allow_like_the_role()
        data = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="203.0.113.1")
                     / UDP(dport=51820) / (b"\x04\0\0\0" + b"d" * 60))
        rows.append(("wireguard_filter: transport data", wg.ns(data, args.runs, args.repeat)))
        fx_src = os.path.join(REPO, "files", "bpf", "flow_export.bpf.c")
        fx = Loaded(fx_src, os.path.join(root, "fx"))
        rows.append(("flow_export: packet of a known flow", fx.ns(frame("198.18.0.9"), args.runs, args.repeat)))
        full = Loaded(fx_src, os.path.join(root, "fxfull"), defines={"FLOW_TABLE_SIZE": 1, "FLOW_RING_SIZE": 4096})
        full.ns(frame("198.18.0.8"), 1, 1)  # the one flow the table holds
        rows.append(("flow_export: table full, ring buffer full (counted)",
                     full.ns(frame("198.18.0.9"), args.runs, args.repeat)))
        sampled = Loaded(fx_src, os.path.join(root, "fxs"), {"sample_rate": 100})
        rows.append(("flow_export: sample_rate 100", sampled.ns(frame("198.18.0.9"), args.runs, args.repeat)))
        rows.extend(lb_rows(root, args))
        rows.extend(mirror_rows(root, args))
        rows.extend(tc_rows(root, args))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print("%-*s  %8s  %6s  %8s" % (width, "program (median of %d runs x %d packets)" % (args.runs, args.repeat),
                                   "ns/pkt", "insns", "<= floor + %.0f" % ABOVE_FLOOR_NS))
    by_label = dict(rows)
    # the floor a program is judged against: the harness, one map lookup and one clock read, all measured in this
    # run (a machine 3-5x slower per test-run packet moves the floor and the programs alike)
    work_floor = (float(by_label["ref: one hash lookup (miss)"]) + float(by_label["ref: bpf_ktime_get_ns()"])
                  - float(floor))
    for label, ns in rows:
        exempt = label.startswith("bare") or label in EXEMPT
        if label.startswith("ref: "):
            verdict = "+%.0f" % (ns - floor)
        else:
            verdict = "" if exempt else ("met" if ns - work_floor <= ABOVE_FLOOR_NS else "NOT met")
        print("%-*s  %8.1f  %6s  %8s" % (width, label, float(ns), ns.insns if ns.insns is not None else "", verdict))
        if not exempt and not label.startswith("ref: "):
            results.figure("programs", label, float(ns), "ns", "verifier insns %s" % ns.insns)
    measured = [(float(ns), label) for label, ns in rows
                if not label.startswith(("bare", "ref: ")) and label not in EXEMPT]
    over = [label for ns, label in sorted(measured, reverse=True) if ns - work_floor > ABOVE_FLOOR_NS]
    print("\nfloor (harness + one hash lookup + one clock read, this run): %.1f ns; target: every program <= floor + "
          "%.0f ns" % (work_floor, ABOVE_FLOOR_NS))
    results.target("programs", "slowest program over the floor (%s; floor %.1f ns: harness %.1f + lookup + clock)"
                   % (max(measured)[1], work_floor, float(floor)), max(measured)[0] - work_floor, "<=",
                   ABOVE_FLOOR_NS, "ns", note="over: " + "; ".join(over) if over else "")
    for label in over:
        print("NOT met: %s (%.1f ns over the floor)" % (label, float(by_label[label]) - work_floor))
    small = by_label["firewall, 10 addresses: listed source (drop)"]
    large = by_label["firewall, 100k addresses + 10k CIDRs: listed source (drop)"]
    clean_small = by_label["firewall, 10 addresses: clean source (pass)"]
    clean_large = by_label["firewall, 100k addresses + 10k CIDRs: clean source (pass)"]
    print("\nfirewall hit, 100k+10k vs 10 entries:   %.2fx (flat is 1.00x)" % (float(large) / small))
    print("firewall clean, 100k+10k vs 10 entries: %.2fx (target <= 1.30x)" % (float(clean_large) / clean_small))
    results.target("programs", "firewall clean source, 100k+10k / 10 entries", clean_large / clean_small, "<=", 1.3)
    results.figure("programs", "firewall listed source, 100k+10k / 10 entries", large / small, "x")


if __name__ == "__main__":
    main()
