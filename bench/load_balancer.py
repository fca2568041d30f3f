# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load balancer's forwarding rate on a veth pair, side by side in one run: bare XDP_TX, load_balancer.bpf.c
(Maglev table only, with the connection table, and encapsulating in IPIP to backends behind a router), the kernel
stack doing the same direct server return in an
nftables netdev ingress chain, and Linux IPVS in direct-routing mode (ipvsadm, Maglev scheduler `mh`), all with
the same three backends.

    python bench/load_balancer.py [--frames 2000000] [--rounds 5] [--cpu 0]
    python bench/load_balancer.py --test-run [--calls 4000]

--test-run measures bare XDP_TX, the Maglev table and the IPIP encapsulation through BPF_PROG_TEST_RUN instead,
one frame per call (with repeat, the kernel would run an encapsulated frame again from its encapsulated bytes),
calls interleaved; each figure is the median duration the kernel reports (a call's fixed overhead included, so
compare differences and ratios side by side only). For kernels that refuse live frames.

Frames come from the live-frames generator of bench/veth_mpps.py (gen0 -> dut0, one CPU for both ends); every
frame is a UDP datagram to the VIP (dut0's address), port 9. The balancer sends each one back out of dut0 towards
a backend MAC; gen0 runs XDP_DROP so that the returning frames are taken (the veth needs an XDP program on the
receiving end) and cost the same for every variant. Each rate is dut0's rx_packets over the generator thread's
CPU time, which the kernel charges with the receive softirq (wall time where IRQ time is accounted apart; see
veth_mpps.py), median of --rounds, variants interleaved; each ratio is the median over rounds of that round's
ratio. The forwarded count (per-backend counters, the nft rule's counter, IPVS's own statistics) is printed beside.

The kernel-stack rows run with bare XDP_PASS on dut0 (the veth needs an XDP program on the receiving end; the
balancer's programs are detached). "nft DSR" is a netdev-family ingress chain on dut0 that matches VIP:9/udp,
picks a backend MAC by `jhash ip saddr . udp sport mod 3`, sets the source MAC to dut0's and `fwd to` dut0: the
same job as the XDP balancer's direct server return, before IP routing. IPVS needs CONFIG_IP_VS: where the
kernel has none, its row says so and the nft chain is the kernel-stack comparator.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "build", "collections"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, HERE)

import results as bench_results  # noqa: E402
from netlab import netns  # noqa: E402
from programs import Loaded, load_balancer  # noqa: E402
from veth_mpps import DUT_MAC, Bench, generator, sh  # noqa: E402

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs, links  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import xdp_netlink as attach  # noqa: E402

BACKEND_MACS = ("02:00:00:00:0b:01", "02:00:00:00:0b:02", "02:00:00:00:0b:03")
BARE, TABLE, CONNS = "bare XDP_TX", "load_balancer, Maglev table", "load_balancer, connection table"
ENCAP = "load_balancer, Maglev table, IPIP encapsulation"
NFT, IPVS = "nft netdev ingress DSR (jhash, fwd)", "IPVS direct routing (mh), same backends"
SHORT = {BARE: "bare XDP_TX", TABLE: "Maglev table", CONNS: "connection table", ENCAP: "IPIP encap",
         NFT: "nft DSR", IPVS: "IPVS DR"}


def ipvs(bench, backends):
    """Set up IPVS DR for VIP:9/udp over the backends in the dut namespace; a reason string if it cannot."""
    probe = subprocess.run(["ip", "netns", "exec", bench.dut, "ipvsadm", "-Ln"], capture_output=True, text=True,
                           check=False)
    if probe.returncode:
        return (probe.stderr.strip().splitlines() or ["ipvsadm failed"])[0]
    sh("ipvsadm", "-C", ns=bench.dut)
    sh("ipvsadm", "-A", "-u", "%s:9" % bench.dst, "-s", "mh", ns=bench.dut)
    for addr in backends:
        sh("ipvsadm", "-a", "-u", "%s:9" % bench.dst, "-r", "%s:9" % addr, "-g", ns=bench.dut)
    return None


def ipvs_forwarded(bench):
    out = subprocess.run(["ip", "netns", "exec", bench.dut, "ipvsadm", "-Ln", "--stats", "--exact"],
                         capture_output=True, text=True, check=False).stdout
    return sum(int(line.split()[2]) for line in out.splitlines() if line.strip().startswith("->"))


def nft_ruleset(table, vip):
    """The nftables netdev chain that does the balancer's job in the kernel stack: VIP:9/udp gets a backend MAC
    by a hash of the flow's source, dut0's MAC as source, and goes back out of dut0 (the rule's counter counts
    what it forwarded)."""
    macs = ", ".join("%d : %s" % (i, mac) for i, mac in enumerate(BACKEND_MACS))
    return ("table netdev %s {\n chain ingress {\n  type filter hook ingress device \"dut0\" priority 0;"
            " policy accept;\n  ip daddr %s udp dport 9 ether saddr set %s"
            " ether daddr set jhash ip saddr . udp sport mod %d map { %s } counter fwd to \"dut0\"\n }\n}\n"
            % (table, vip, DUT_MAC, len(BACKEND_MACS), macs))


def nft_delete(bench, table):
    subprocess.run(["ip", "netns", "exec", bench.dut, "nft", "delete", "table", "netdev", table],
                   capture_output=True, check=False)


def nft_forwarded(bench, table):
    out = json.loads(sh("nft", "-j", "list", "table", "netdev", table, ns=bench.dut))
    return sum(expr["counter"]["packets"] for item in out["nftables"] if "rule" in item
               for expr in item["rule"]["expr"] if "counter" in expr)


def test_run(args):
    """Bare XDP_TX, the Maglev table and IPIP encapsulation, one frame per BPF_PROG_TEST_RUN call, interleaved."""
    import random
    import shutil

    from programs import frame

    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf

    root = os.path.join(bpffs.DEFAULT_BPFFS, "wslbtr%05x" % random.randrange(1 << 20))
    try:
        tx = Loaded(os.path.join(HERE, "bpf", "bare_tx.bpf.c"), os.path.join(root, "tx"))
        table = load_balancer(os.path.join(root, "t"), "198.18.0.1", ["198.18.1.%d" % i for i in range(1, 4)],
                              conn_table=0)
        encap = load_balancer(os.path.join(root, "e"), "198.18.0.1", ["198.18.2.%d" % i for i in range(1, 4)],
                              conn_table=0, encap="ipip", encap_source="198.18.0.1")
        hit = frame("198.18.0.9")
        fds = {BARE: tx.obj.prog_fd, TABLE: table.obj.prog_fd, ENCAP: encap.obj.prog_fd}
        out = libbpf.test_run(fds[ENCAP], hit)
        assert out[0] == 3 and len(out[1]) == len(hit) + 20, "the encapsulating balancer did not encapsulate"
        ns = {name: [] for name in fds}
        for _call in range(args.calls):
            for name, fd in fds.items():
                ns[name].append(libbpf.test_run(fd, hit, 1)[2])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    chunk = max(args.calls // 10, 1)

    def ratio(a, b):
        return statistics.median(statistics.median(ns[a][i:i + chunk]) / statistics.median(ns[b][i:i + chunk])
                                 for i in range(0, args.calls, chunk))
    print("%-50s  %s" % ("BPF_PROG_TEST_RUN, one frame a call (%d calls)" % args.calls, "ns/call (median)"))
    for name, values in ns.items():
        print("%-50s  %6.0f" % (name, statistics.median(values)))
        bench_results.figure("load_balancer", "test run: " + SHORT[name], statistics.median(values), "ns/call")
    for a, b in ((TABLE, BARE), (ENCAP, BARE), (ENCAP, TABLE)):
        value = ratio(a, b)
        print("%s / %s: %.2fx" % (SHORT[a], SHORT[b], value))
        bench_results.figure("load_balancer", "test run: %s / %s" % (SHORT[a], SHORT[b]), value, "x")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, help="frames per measurement (default 2M with live frames, 300k with "
                                                   "af_packet)")
    parser.add_argument("--generator", choices=("live", "af_packet"),
                        help="force the traffic generator (default: live frames where the kernel takes them, else "
                             "af_packet; $WS_BENCH_GENERATOR too)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--test-run", action="store_true")
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    bpffs.ensure_bpffs()
    if args.test_run:
        test_run(args)
        return
    bench = Bench()
    table = "wslbb" + bench.suffix
    forwarded = {}
    try:
        bench.up()
        net = bench.dst.rsplit(".", 1)[0]
        backends = ["%s.%d" % (net, 11 + i) for i in range(3)]
        for addr, mac in zip(backends, BACKEND_MACS):
            sh("ip", "neigh", "replace", addr, "lladdr", mac, "dev", "dut0", "nud", "permanent", ns=bench.dut)
        send = generator(bench, args.frames, args.generator)
        args.frames = send.frames
        drop = Loaded(os.path.join(HERE, "bpf", "bare_drop.bpf.c"), os.path.join(bench.pins, "drop"))
        with netns(bench.gen):  # takes the frames the balancer sends back
            attach.attach(links.ifindex("gen0"), drop.obj.prog_fd, "native")
        bare_tx = Loaded(os.path.join(HERE, "bpf", "bare_tx.bpf.c"), os.path.join(bench.pins, "tx"))
        passer = Loaded(os.path.join(HERE, "bpf", "bare_pass.bpf.c"), os.path.join(bench.pins, "pass"))
        table_only = load_balancer(os.path.join(bench.pins, "lbt"), bench.dst, backends, conn_table=0, port=9,
                                   macs=BACKEND_MACS)
        with_conns = load_balancer(os.path.join(bench.pins, "lbc"), bench.dst, backends, conn_table=1, port=9,
                                   macs=BACKEND_MACS)
        # backends in another subnet: the same table, each packet in IPIP to them via one next hop's MAC
        remote = ["198.18.200.%d" % (11 + i) for i in range(3)]
        encap = load_balancer(os.path.join(bench.pins, "lbe"), bench.dst, remote,
                              conn_table=0, port=9, macs=[BACKEND_MACS[0]] * 3, encap="ipip",
                              encap_source=bench.dst)
        sh("nft", "-c", "-f", "-", ns=bench.dut, stdin=nft_ruleset(table, bench.dst))  # fails before any round
        ipvs_problem = ipvs(bench, backends)

        def with_nft():
            bench.attach(passer.obj.prog_fd)  # the balancer's XDP programs off; the veth still needs one
            sh("nft", "-f", "-", ns=bench.dut, stdin=nft_ruleset(table, bench.dst))

        # (name, setup, forwarded counter); every setup replaces dut0's XDP program, and the nft table exists
        # only while its own variant runs (its hook would take IPVS's frames)
        variants = [
            (BARE, lambda: bench.attach(bare_tx.obj.prog_fd), None),
            (TABLE, lambda: bench.attach(table_only.obj.prog_fd), table_only),
            (CONNS, lambda: bench.attach(with_conns.obj.prog_fd), with_conns),
            (ENCAP, lambda: bench.attach(encap.obj.prog_fd), encap),
            (NFT, with_nft, "nft"),
        ]
        if not ipvs_problem:
            variants.append((IPVS, lambda: bench.attach(passer.obj.prog_fd), "ipvs"))
        results = {name: [] for name, _setup, _count in variants}
        for _round in range(args.rounds):
            for name, setup, counted in variants:
                setup()
                send()  # warm up
                before = _forwarded(bench, counted, table)
                got, seconds = send()
                results[name].append(got / seconds / 1e6)
                if before is not None:
                    forwarded[name] = forwarded.get(name, 0) + _forwarded(bench, counted, table) - before
                nft_delete(bench, table)
        bench.attach(None)
    finally:
        nft_delete(bench, table)
        subprocess.run(["ip", "netns", "exec", bench.dut, "ipvsadm", "-C"], capture_output=True, check=False)
        bench.down()
    width = max(len(n) for n in results)
    title = "dut0 (%d frames x %d rounds, one CPU, generator %s)" % (args.frames, args.rounds, send.kind)
    print("%-*s  %8s  %12s  %s" % (width, title, "Mpps", "forwarded", "rounds"))
    for name, rates in results.items():
        fwd = forwarded.get(name)
        print("%-*s  %8.2f  %12s  %s" % (width, name, statistics.median(rates), "-" if fwd is None else fwd,
                                         " ".join("%.2f" % r for r in rates)))
        bench_results.figure("load_balancer", SHORT[name], statistics.median(rates), "Mpps")

    def ratio(a, b):
        """The median over rounds of that round's a / b (as veth_mpps.py: less drift than a ratio of medians)."""
        return statistics.median(x / y for x, y in zip(results[a], results[b]))
    print("\n(each ratio: the median over rounds of that round's ratio)")
    for base in (BARE, NFT, IPVS):
        if base not in results:
            continue
        for name in (TABLE, CONNS, ENCAP):
            value = ratio(name, base)
            print("%s / %s: %.2fx" % (name, SHORT[base], value))
            bench_results.figure("load_balancer", "%s / %s" % (SHORT[name], SHORT[base]), value, "x")
    value = ratio(ENCAP, TABLE)
    print("%s / %s: %.2fx (what the outer header costs)" % (SHORT[ENCAP], SHORT[TABLE], value))
    bench_results.figure("load_balancer", "%s / %s" % (SHORT[ENCAP], SHORT[TABLE]), value, "x")
    if ipvs_problem:
        print("IPVS: not measured here (%s); nft DSR is the kernel-stack comparator" % ipvs_problem)


def _forwarded(bench, counted, table):
    if counted is None:
        return None
    if counted == "ipvs":
        return ipvs_forwarded(bench)
    if counted == "nft":
        return nft_forwarded(bench, table)
    return sum(b["packets"] for b in info.backend_counters(counted.maps))


if __name__ == "__main__":
    main()
