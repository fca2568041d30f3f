# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Receive rate on a veth pair, side by side in one run: bare XDP_DROP, the firewall with
10 and with 100k deny addresses + 10k CIDRs, the same lists as an nftables set, and iptables
rules (10 and 1k). A plain one-lookup hash blocklist of the same 100k addresses
(tests/integration/bpf/plain_blocklist.bpf.c) runs beside them as a reference: what any hash-based list costs.

    python bench/veth_mpps.py [--frames 2000000] [--rounds 5] [--cpu 0]

Traffic comes from a live-frames generator: an XDP program that redirects every frame out
of the generator's veth, run by BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES in the
generator's namespace. Generator and receiver share one CPU (the receiving veth's NAPI runs
in the softirq the generator raises), so a slower receiver shows as fewer packets per second.
Each figure is the receiver's rx_packets over the CPU time of the generator thread, which the
kernel charges with the receive softirq it runs (wall time on kernels that account IRQ time
apart; softirq_in_task_time()), median of --rounds, the variants interleaved; a shared machine's
other processes then do not move the figures. The source address is a hot key on every deny list.
Targets (issue 5): firewall 100k+10k >= 0.80x bare XDP_DROP, >= 3x the nftables set, and
flat from 10 to 100k entries.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import os
import random
import shutil
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
from programs import Loaded, deny_nets  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs, libbpf, links, maps  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import xdp_netlink as attach  # noqa: E402

BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1
GEN_MAC, DUT_MAC = "02:00:00:00:0a:01", "02:00:00:00:0a:02"


def sh(*cmd, ns=None, stdin=None):
    argv = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    return subprocess.run(argv, input=stdin, text=True, capture_output=True, check=True).stdout


class Bench:
    def __init__(self):
        self.suffix = "%04x" % random.randrange(1 << 16)
        self.gen, self.dut = "wsbg" + self.suffix, "wsbd" + self.suffix
        octet = random.randrange(1, 255)
        self.src, self.dst = "198.19.%d.1" % octet, "198.19.%d.2" % octet
        self.pins = os.path.join(bpffs.DEFAULT_BPFFS, "wsbench" + self.suffix)

    def up(self):
        sh("ip", "netns", "add", self.gen)
        sh("ip", "netns", "add", self.dut)
        sh("ip", "-n", self.gen, "link", "add", "gen0", "address", GEN_MAC, "type", "veth", "peer", "name", "dut0",
           "address", DUT_MAC, "netns", self.dut)
        for ns, dev, ip in ((self.gen, "gen0", self.src), (self.dut, "dut0", self.dst)):
            sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        os.makedirs(self.pins, exist_ok=True)

    def down(self):
        for ns in (self.gen, self.dut):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        shutil.rmtree(self.pins, ignore_errors=True)

    def rx_packets(self):
        link = json.loads(sh("ip", "-s", "-j", "link", "show", "dut0", ns=self.dut))[0]
        return link["stats64"]["rx"]["packets"]

    def attach(self, prog_fd):
        with netns(self.dut):
            index = links.ifindex("dut0")
            state = attach.xdp_state(index)
            if state["prog_id"]:
                sh("ip", "link", "set", "dev", "dut0", "xdp", "off", ns=self.dut)
            if prog_fd is not None:
                attach.attach(index, prog_fd, "native")


def generator(bench, frames=None, kind=None):
    """A function that sends `frames` frames from gen0 to dut0 on this CPU; returns (received, seconds). The
    generator is live frames where the kernel takes them, else AF_PACKET (bench/generators.py; `kind` or
    $WS_BENCH_GENERATOR forces one); `send.kind` says which, `send.frames` how many (default 2M live frames,
    300k AF_PACKET frames: those cost about ten times more)."""
    import generators

    packet = bytes(Ether(src=GEN_MAC, dst=DUT_MAC) / IP(src=bench.src, dst=bench.dst) / UDP(sport=4000, dport=9)
                   / (b"x" * 18))
    gen = generators.pick(bench, kind)(bench, "udp", packet)
    frames = frames or (2000000 if gen.kind == "live" else 300000)
    cpu = min(os.sched_getaffinity(0))
    wall = not softirq_in_task_time()

    def send():
        got, seconds, used = gen.send([cpu], frames)
        return got, seconds if wall else used
    send.kind, send.frames = gen.kind, frames
    return send


def softirq_in_task_time():
    """Whether a thread's CPU time includes the softirq work it triggers (the receiving veth's NAPI: the program
    under test, or the stack and netfilter after XDP_PASS): true unless the kernel accounts IRQ time apart
    (CONFIG_IRQ_TIME_ACCOUNTING). Where it does, rates are taken over the generator's CPU time, which other
    processes on a shared machine do not inflate; else over wall time."""
    try:
        with gzip.open("/proc/config.gz", "rt") as fh:
            return "CONFIG_IRQ_TIME_ACCOUNTING=y" not in fh.read()
    except OSError:
        return False


def deny_lists(src, rng):
    addrs = sorted({str(ipaddress.IPv4Address(0x0B000000 + rng.randrange(1 << 24))) for _i in range(100000)})
    nets = deny_nets(rng, 10000, avoid=(198, int(src.split(".")[0])))
    return addrs[:99999] + [src], nets


XDP_FILTER_PINS = os.path.join(bpffs.DEFAULT_BPFFS, "xdp-filter")
BARE, FW10, FW10K, FWBIG = ("bare XDP_DROP", "firewall, 10 deny addresses", "firewall, 10k deny addresses",
                            "firewall, 100k addresses + 10k CIDRs")
BLOCK, XDPF, NFT = ("reference: plain hash blocklist, 100k", "xdp-filter (its loader), 10k addresses",
                    "nftables set (netdev ingress), 100k + 10k")


class XdpFilter:
    """xdp-filter (xdp-tools) on dut0, loaded and filled by its own tool: `xdp-filter load -m native dut0`, then
    `xdp-filter ip ADDR -m src` per listed source. Its program is then switched in and out of dut0 by id like
    every other variant (its maps live as long as the program). `problem` says why it cannot run, else None."""

    def __init__(self, bench, sources):
        self.bench, self.fd, self.problem = bench, None, None
        tool = shutil.which("xdp-filter")
        if not tool:
            self.problem = "xdp-filter is not installed (Debian package xdp-tools)"
            return
        if os.path.exists(XDP_FILTER_PINS):
            self.problem = "%s exists: another xdp-filter is loaded on this machine, left alone" % XDP_FILTER_PINS
            return
        bench.attach(None)
        # nsenter, not `ip netns exec`: that one remounts /sys, and libxdp then finds no bpffs
        self.enter = enter = ["nsenter", "--net=/run/netns/%s" % bench.dut, tool]
        load = subprocess.run(enter + ["load", "-m", "native", "dut0"], capture_output=True, text=True, check=False)
        if load.returncode:
            self.problem = "xdp-filter load -m native dut0 failed: %s" % (load.stderr.strip().splitlines() or ["?"])[-1]
            return
        self.loaded = True
        # one `xdp-filter ip` per source, one after the other (each takes xdp-filter's lock file; a process each:
        # 10-25 ms here, so a few minutes for 10,000)
        fill = subprocess.run(["nsenter", "--net=/run/netns/%s" % bench.dut, "xargs", "-I", "ADDR",
                               tool, "ip", "ADDR", "-m", "src"], input="\n".join(sources) + "\n",
                              capture_output=True, text=True, check=False)
        if fill.returncode:
            self.problem = "xdp-filter ip ADDR -m src failed: %s" % (fill.stderr.strip().splitlines() or ["?"])[-1]
            return
        with maps.PinnedMap(os.path.join(XDP_FILTER_PINS, "filter_ipv4")) as listed:
            if len(listed.dump_keys()) != len(sources):
                self.problem = "xdp-filter holds %d sources, not %d" % (len(listed.dump_keys()), len(sources))
                return
        with netns(bench.dut):
            prog_id = attach.xdp_state(links.ifindex("dut0"))["prog_id"]
        self.fd = libbpf.prog_fd_by_id(prog_id)

    def unload(self):
        """Its own program back on dut0, then its own unload (which removes its pins)."""
        if not getattr(self, "loaded", False):
            return
        if self.fd is not None:
            self.bench.attach(self.fd)
            os.close(self.fd)
        subprocess.run(self.enter + ["unload", "dut0"], capture_output=True, check=False)
        if os.path.isdir(XDP_FILTER_PINS):  # its unload keeps them when it thinks another interface uses them
            shutil.rmtree(XDP_FILTER_PINS, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, help="frames per measurement (default 2M with live frames, 300k with "
                                                   "af_packet: its frames cost ~10x more)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--generator", choices=("live", "af_packet"),
                        help="force the traffic generator (default: live frames where the kernel takes them, else "
                             "af_packet; $WS_BENCH_GENERATOR too)")
    parser.add_argument("--no-xdp-filter", action="store_true", help="leave out the xdp-filter row")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    bpffs.ensure_bpffs()
    bench = Bench()
    rng = random.Random(11)
    xdpf = None
    try:
        bench.up()
        send = generator(bench, args.frames, args.generator)
        frames = send.frames
        addrs, nets = deny_lists(bench.src, rng)
        bare = Loaded(os.path.join(HERE, "bpf", "bare_drop.bpf.c"), os.path.join(bench.pins, "drop"))
        passer = Loaded(os.path.join(HERE, "bpf", "bare_pass.bpf.c"), os.path.join(bench.pins, "pass"))
        firewalls = {}
        for name, count, cidrs in ((FW10, 10, []), (FW10K, 10000, []), (FWBIG, len(addrs), nets)):
            fw = Loaded(os.path.join(REPO, "files", "bpf", "firewall.bpf.c"),
                        os.path.join(bench.pins, "fw%d" % count)).allow_like_the_role()
            mapsync.sync(fw.maps["deny_v4"], entries=addrs[-count:], key_type="ipv4", diff=False)
            if cidrs:
                mapsync.sync(fw.maps["deny_net_v4"], entries=cidrs, key_type="ipv4_cidr", diff=False)
            firewalls[name] = fw
        blocklist = Loaded(os.path.join(REPO, "tests", "integration", "bpf", "plain_blocklist.bpf.c"),
                           os.path.join(bench.pins, "blocklist"), defines={"BLOCKLIST_SIZE": 131072})
        mapsync.sync(blocklist.maps["blocklist"], entries=addrs, key_type="ipv4", diff=False)
        if not args.no_xdp_filter:
            print("xdp-filter: loading, listing 10,000 sources with its own tool ...", flush=True)
            xdpf = XdpFilter(bench, addrs[-10000:])
            if xdpf.problem:
                print("xdp-filter: not measured: %s" % xdpf.problem, flush=True)

        def nft(elements, cidrs):
            sh("nft", "-f", "-", ns=bench.dut, stdin=(
                "table netdev wsbench {\n set deny { type ipv4_addr; size 262144; }\n"
                " set nets { type ipv4_addr; flags interval; auto-merge; size 65536; }\n"
                " chain ingress { type filter hook ingress device dut0 priority 0;"
                " ip saddr @deny drop; ip saddr @nets drop; }\n}\n"))
            batch = ["add element netdev wsbench deny { %s }" % ", ".join(elements[start:start + 20000])
                     for start in range(0, len(elements), 20000)]
            if cidrs:
                batch.append("add element netdev wsbench nets { %s }" % ", ".join(cidrs))
            sh("nft", "-f", "-", ns=bench.dut, stdin="\n".join(batch) + "\n")

        def iptables(count):
            rules = ["*raw"] + ["-A PREROUTING -s %s -j DROP" % a for a in addrs[-count:]] + ["COMMIT", ""]
            sh("iptables-restore", ns=bench.dut, stdin="\n".join(rules))

        def clear_netfilter():
            subprocess.run(["ip", "netns", "exec", bench.dut, "nft", "flush", "ruleset"], capture_output=True,
                           check=False)
            subprocess.run(["ip", "netns", "exec", bench.dut, "iptables", "-t", "raw", "-F"], capture_output=True,
                           check=False)

        variants = [(BARE, lambda: bench.attach(bare.obj.prog_fd))]
        variants += [(name, lambda fw=fw: bench.attach(fw.obj.prog_fd)) for name, fw in firewalls.items()]
        variants.append((BLOCK, lambda: bench.attach(blocklist.obj.prog_fd)))
        if xdpf and xdpf.fd is not None:
            variants.append((XDPF, lambda: bench.attach(xdpf.fd)))
        variants += [
            (NFT, lambda: (bench.attach(passer.obj.prog_fd), nft(addrs, nets))),
            ("iptables raw, 10 rules", lambda: (bench.attach(passer.obj.prog_fd), iptables(10))),
            ("iptables raw, 1k rules", lambda: (bench.attach(passer.obj.prog_fd), iptables(1000))),
        ]
        xdp_fds = {BARE: bare.obj.prog_fd, BLOCK: blocklist.obj.prog_fd}
        xdp_fds.update((name, fw.obj.prog_fd) for name, fw in firewalls.items())
        if xdpf and xdpf.fd is not None:
            xdp_fds[XDPF] = xdpf.fd
        test_ns = test_runs(xdp_fds, bench)
        results = {name: [] for name, _setup in variants}
        for _round in range(args.rounds):
            for name, setup in variants:
                clear_netfilter()
                setup()
                send()  # warm up
                got, seconds = send()
                results[name].append(got / seconds / 1e6)
        clear_netfilter()
        bench.attach(None)
    finally:
        if xdpf:
            xdpf.unload()
        bench.down()
    report(results, frames, args.rounds, send.kind, xdpf, test_ns)


def test_runs(fds, bench, runs=9, repeat=100000):
    """{variant: ns per packet} of each XDP variant run by BPF_PROG_TEST_RUN (no veth, no generator) on the same
    listed-source frame: the median of `runs` rounds, the variants interleaved in each round. What the program
    itself costs, whatever generator the machine allows."""
    packet = bytes(Ether(src=GEN_MAC, dst=DUT_MAC) / IP(src=bench.src, dst=bench.dst) / UDP(sport=4000, dport=9)
                   / (b"x" * 18))
    out = {name: [] for name in fds}
    for _round in range(runs):
        for name, fd in fds.items():
            out[name].append(libbpf.test_run(fd, packet, repeat)[2])
    return {name: statistics.median(ns) for name, ns in out.items()}


def report(results, frames, rounds, kind, xdpf, test_ns):
    width = max(len(n) for n in results)
    print("%-*s  %8s  %8s  %s" % (width, "receiver (%d frames x %d rounds, one CPU, generator %s)" % (
        frames, rounds, kind), "Mpps", "ns/frame", "rounds"))
    for name, rates in results.items():
        print("%-*s  %8.2f  %8.1f  %s" % (width, name, statistics.median(rates), 1e3 / statistics.median(rates),
                                          " ".join("%.2f" % r for r in rates)))

    def ratio(a, b):
        """The median over rounds of each round's a / b (measured minutes apart at most: less drift than
        a ratio of medians when other work on the machine comes and goes)."""
        return statistics.median(x / y for x, y in zip(results[a], results[b]))

    def above(a, b):
        """ns per frame a costs over b, median over rounds of each round's difference."""
        return statistics.median(1e3 / x - 1e3 / y for x, y in zip(results[a], results[b]))
    note = "" if kind == "live" else ("generator af_packet (live frames refused): its ~%.0f ns/frame sender cost is "
                                      "in every rate, so ratios to bare are diluted; see the ns-over rows"
                                      % (1e3 / statistics.median(results[BARE])))
    print("\n(each ratio: the median over rounds of that round's ratio; generator: %s)" % kind)
    rows = [(FWBIG, BARE, ">=", 0.80, "firewall 100k+10k listed / bare XDP_DROP"),
            (FWBIG, BLOCK, ">=", 0.95, "firewall 100k+10k listed / plain blocklist"),
            (FWBIG, NFT, ">=", 3.0, "firewall 100k+10k listed / nftables set")]
    if XDPF in results:
        rows.append((FW10K, XDPF, ">=", 1.0, "firewall 10k listed / xdp-filter 10k (its loader)"))
    for a, b, op, goal, label in rows:
        value = ratio(a, b)
        print("%s: %.2fx (target %s %.2fx); %+.1f ns/frame" % (label, value, op, goal, above(a, b)))
        if kind == "live" or b not in test_ns:
            bench_results.target("veth_mpps", label, value, op, goal, note=note)
        else:
            bench_results.figure("veth_mpps", "%s (%s)" % (label, kind), value, "x", note)
        bench_results.figure("veth_mpps", label.replace(" / ", " ns over ") + " (" + kind + ")", above(a, b), "ns")
    print("\nBPF_PROG_TEST_RUN, same listed-source frame (ns/packet, median of 9 x 100k; floor: bare XDP_DROP):")
    for name, ns in test_ns.items():
        print("  %-40s %6.1f ns  (+%.1f over the floor)" % (name, ns, ns - test_ns[BARE]))
    for a, b, op, goal, label in rows:
        if b not in test_ns:
            continue
        value = test_ns[b] / test_ns[a]  # a rate ratio: the faster program has the smaller ns
        print("test run: %s: %.2fx (target %s %.2fx)" % (label, value, op, goal))
        if kind != "live":  # the veth ratio is diluted by the sender: the program's own cost is judged instead
            bench_results.target("veth_mpps", "%s (test run: live frames refused)" % label, value, op, goal,
                                 note="ns/packet %.1f vs %.1f, floor %.1f" % (test_ns[a], test_ns[b], test_ns[BARE]))
        else:
            bench_results.figure("veth_mpps", "%s (test run)" % label, value, "x")
    if XDPF not in results and xdpf is not None:
        bench_results.figure("veth_mpps", "xdp-filter: not measured (%s)" % xdpf.problem, 0, "")
    flat = ratio(FWBIG, FW10)
    print("firewall 100k+10k / firewall 10:   %.2fx (flat is 1.00x)" % flat)
    print("reference: plain blocklist / bare XDP_DROP: %.2fx, / nftables set: %.2fx"
          % (ratio(BLOCK, BARE), ratio(BLOCK, NFT)))
    bench_results.figure("veth_mpps", "firewall 100k+10k / firewall 10", flat, "x")
    bench_results.figure("veth_mpps", "bare XDP_DROP (%s)" % kind, statistics.median(results[BARE]), "Mpps")


if __name__ == "__main__":
    main()
