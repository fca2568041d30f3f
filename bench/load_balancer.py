# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load balancer's forwarding rate on a veth pair, side by side in one run: bare XDP_TX, load_balancer.bpf.c
(Maglev table only, and with the connection table), and Linux IPVS in direct-routing mode (ipvsadm, Maglev
scheduler `mh`) with the same three backends.

    python bench/load_balancer.py [--frames 2000000] [--rounds 5] [--cpu 0]

Frames come from the live-frames generator of bench/veth_mpps.py (gen0 -> dut0, one CPU for both ends); every
frame is a UDP datagram to the VIP (dut0's address), port 9. The balancer sends each one back out of dut0 towards
a backend MAC; gen0 runs XDP_DROP so that the returning frames are taken (the veth needs an XDP program on the
receiving end) and cost the same for every variant. Each figure is dut0's rx_packets over the wall time of a run
(median of --rounds, variants interleaved); the forwarded count (per-backend counters, IPVS's own statistics)
is printed beside it. IPVS needs CONFIG_IP_VS: where the kernel has none, its row says so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "build", "collections"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, HERE)

from netlab import netns  # noqa: E402
from programs import Loaded, load_balancer  # noqa: E402
from veth_mpps import Bench, generator, sh  # noqa: E402

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import xdp_netlink as attach  # noqa: E402

BACKEND_MACS = ("02:00:00:00:0b:01", "02:00:00:00:0b:02", "02:00:00:00:0b:03")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=2000000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    bpffs.ensure_bpffs()
    bench = Bench()
    forwarded = {}
    try:
        bench.up()
        net = bench.dst.rsplit(".", 1)[0]
        backends = ["%s.%d" % (net, 11 + i) for i in range(3)]
        for addr, mac in zip(backends, BACKEND_MACS):
            sh("ip", "neigh", "replace", addr, "lladdr", mac, "dev", "dut0", "nud", "permanent", ns=bench.dut)
        send = generator(bench, args.frames)
        drop = Loaded(os.path.join(HERE, "bpf", "bare_drop.bpf.c"), os.path.join(bench.pins, "drop"))
        with netns(bench.gen):  # takes the frames the balancer sends back
            attach.attach(attach.ifindex("gen0"), drop.obj.prog_fd, "native")
        bare_tx = Loaded(os.path.join(HERE, "bpf", "bare_tx.bpf.c"), os.path.join(bench.pins, "tx"))
        passer = Loaded(os.path.join(HERE, "bpf", "bare_pass.bpf.c"), os.path.join(bench.pins, "pass"))
        table_only = load_balancer(os.path.join(bench.pins, "lbt"), bench.dst, backends, conn_table=0, port=9,
                                   macs=BACKEND_MACS)
        with_conns = load_balancer(os.path.join(bench.pins, "lbc"), bench.dst, backends, conn_table=1, port=9,
                                   macs=BACKEND_MACS)
        ipvs_problem = ipvs(bench, backends)
        variants = [
            ("bare XDP_TX", lambda: bench.attach(bare_tx.obj.prog_fd), None),
            ("load_balancer, Maglev table", lambda: bench.attach(table_only.obj.prog_fd), table_only),
            ("load_balancer, connection table", lambda: bench.attach(with_conns.obj.prog_fd), with_conns),
        ]
        if not ipvs_problem:
            variants.append(("IPVS direct routing (mh), same backends", lambda: bench.attach(passer.obj.prog_fd),
                             "ipvs"))
        results = {name: [] for name, _setup, _count in variants}
        for _round in range(args.rounds):
            for name, setup, counted in variants:
                setup()
                send()  # warm up
                before = _forwarded(bench, counted)
                got, seconds = send()
                results[name].append(got / seconds / 1e6)
                if before is not None:
                    forwarded[name] = forwarded.get(name, 0) + _forwarded(bench, counted) - before
        bench.attach(None)
    finally:
        subprocess.run(["ip", "netns", "exec", bench.dut, "ipvsadm", "-C"], capture_output=True, check=False)
        bench.down()
    width = max(len(n) for n in results)
    print("%-*s  %8s  %12s  %s" % (width, "dut0 (%d frames x %d rounds, one CPU)" % (args.frames, args.rounds),
                                   "Mpps", "forwarded", "rounds"))
    for name, rates in results.items():
        fwd = forwarded.get(name)
        print("%-*s  %8.2f  %12s  %s" % (width, name, statistics.median(rates), "-" if fwd is None else fwd,
                                         " ".join("%.2f" % r for r in rates)))
    med = {n: statistics.median(r) for n, r in results.items()}
    base = med["bare XDP_TX"]
    for name in list(med)[1:]:
        print("%s / bare XDP_TX: %.2fx" % (name, med[name] / base))
    if ipvs_problem:
        print("IPVS: not measured here (%s)" % ipvs_problem)
    else:
        ipvs_rate = med["IPVS direct routing (mh), same backends"]
        for name in ("load_balancer, Maglev table", "load_balancer, connection table"):
            print("%s / IPVS: %.2fx" % (name, med[name] / ipvs_rate))


def _forwarded(bench, counted):
    if counted is None:
        return None
    if counted == "ipvs":
        return ipvs_forwarded(bench)
    return sum(b["packets"] for b in info.backend_counters(counted.maps))


if __name__ == "__main__":
    main()
