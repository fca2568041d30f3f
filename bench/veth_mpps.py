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
import ctypes
import gzip
import ipaddress
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

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
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs, libbpf, links  # noqa: E402
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


def generator(bench, frames):
    """A function that sends `frames` live frames from gen0 to dut0; returns (received, seconds)."""
    gen = Loaded(os.path.join(HERE, "bpf", "live_redirect.bpf.c"), os.path.join(bench.pins, "gen"),
                 {"out_ifindex": int(sh("cat", "/sys/class/net/gen0/ifindex", ns=bench.gen))})
    packet = bytes(Ether(src=GEN_MAC, dst=DUT_MAC) / IP(src=bench.src, dst=bench.dst) / UDP(sport=4000, dport=9)
                   / (b"x" * 18))
    data = ctypes.create_string_buffer(packet, len(packet))

    def send():
        opts = libbpf.TestRunOpts(sz=ctypes.sizeof(libbpf.TestRunOpts), data_in=ctypes.addressof(data),
                                  data_size_in=len(packet), repeat=frames, flags=BPF_F_TEST_XDP_LIVE_FRAMES,
                                  batch_size=64)
        before = bench.rx_packets()
        with netns(bench.gen):
            start, used = time.perf_counter(), time.thread_time()
            libbpf.check(libbpf.lib().bpf_prog_test_run_opts(gen.obj.prog_fd, ctypes.byref(opts)), "live frames")
            seconds, used = time.perf_counter() - start, time.thread_time() - used
        return bench.rx_packets() - before, seconds if wall else max(used, 1e-9)
    wall = not softirq_in_task_time()
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=2000000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    bpffs.ensure_bpffs()
    bench = Bench()
    rng = random.Random(11)
    try:
        bench.up()
        send = generator(bench, args.frames)
        addrs, nets = deny_lists(bench.src, rng)
        bare = Loaded(os.path.join(HERE, "bpf", "bare_drop.bpf.c"), os.path.join(bench.pins, "drop"))
        passer = Loaded(os.path.join(HERE, "bpf", "bare_pass.bpf.c"), os.path.join(bench.pins, "pass"))
        fw10 = Loaded(os.path.join(REPO, "files", "bpf", "firewall.bpf.c"), os.path.join(bench.pins, "fw10"))
        mapsync.sync(fw10.maps["deny_v4"], entries=addrs[-10:], key_type="ipv4", diff=False)
        fwbig = Loaded(os.path.join(REPO, "files", "bpf", "firewall.bpf.c"), os.path.join(bench.pins, "fwbig"))
        mapsync.sync(fwbig.maps["deny_v4"], entries=addrs, key_type="ipv4", diff=False)
        mapsync.sync(fwbig.maps["deny_net_v4"], entries=nets, key_type="ipv4_cidr", diff=False)
        blocklist = Loaded(os.path.join(REPO, "tests", "integration", "bpf", "plain_blocklist.bpf.c"),
                           os.path.join(bench.pins, "blocklist"), defines={"BLOCKLIST_SIZE": 131072})
        mapsync.sync(blocklist.maps["blocklist"], entries=addrs, key_type="ipv4", diff=False)

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

        variants = [
            ("bare XDP_DROP", lambda: bench.attach(bare.obj.prog_fd)),
            ("firewall, 10 deny addresses", lambda: bench.attach(fw10.obj.prog_fd)),
            ("firewall, 100k addresses + 10k CIDRs", lambda: bench.attach(fwbig.obj.prog_fd)),
            ("reference: plain hash blocklist, 100k", lambda: bench.attach(blocklist.obj.prog_fd)),
            ("nftables set (netdev ingress), 100k + 10k",
             lambda: (bench.attach(passer.obj.prog_fd), nft(addrs, nets))),
            ("iptables raw, 10 rules", lambda: (bench.attach(passer.obj.prog_fd), iptables(10))),
            ("iptables raw, 1k rules", lambda: (bench.attach(passer.obj.prog_fd), iptables(1000))),
        ]
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
        bench.down()
    width = max(len(n) for n in results)
    print("%-*s  %8s  %s" % (width, "receiver (%d frames x %d rounds, one CPU)" % (args.frames, args.rounds),
                             "Mpps", "rounds"))
    for name, rates in results.items():
        print("%-*s  %8.2f  %s" % (width, name, statistics.median(rates), " ".join("%.2f" % r for r in rates)))
    big_name, nft_name = "firewall, 100k addresses + 10k CIDRs", "nftables set (netdev ingress), 100k + 10k"
    block_name = "reference: plain hash blocklist, 100k"

    def ratio(a, b):
        """The median over rounds of each round's a / b (measured minutes apart at most: less drift than
        a ratio of medians when other work on the machine comes and goes)."""
        return statistics.median(x / y for x, y in zip(results[a], results[b]))
    figures = {"bare": ratio(big_name, "bare XDP_DROP"), "block": ratio(big_name, block_name),
               "nft": ratio(big_name, nft_name), "flat": ratio(big_name, "firewall, 10 deny addresses")}
    print("\n(each ratio: the median over rounds of that round's ratio)")
    print("firewall 100k+10k / bare XDP_DROP: %.2fx (target >= 0.80x)" % figures["bare"])
    print("firewall 100k+10k / plain blocklist: %.2fx (target >= 0.95x)" % figures["block"])
    print("firewall 100k+10k / nftables set:  %.2fx (target >= 3x)" % figures["nft"])
    print("firewall 100k+10k / firewall 10:   %.2fx (flat is 1.00x)" % figures["flat"])
    print("reference: plain blocklist / bare XDP_DROP: %.2fx, / nftables set: %.2fx"
          % (ratio(block_name, "bare XDP_DROP"), ratio(block_name, nft_name)))
    bench_results.target("veth_mpps", "firewall 100k+10k listed / bare XDP_DROP", figures["bare"], ">=", 0.80)
    bench_results.target("veth_mpps", "firewall 100k+10k listed / plain blocklist", figures["block"], ">=", 0.95)
    bench_results.target("veth_mpps", "firewall 100k+10k listed / nftables set", figures["nft"], ">=", 3.0)
    bench_results.figure("veth_mpps", "firewall 100k+10k / firewall 10", figures["flat"], "x")
    bench_results.figure("veth_mpps", "bare XDP_DROP", statistics.median(results["bare XDP_DROP"]), "Mpps")


if __name__ == "__main__":
    main()
