# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two CPUs at once: the limiters admit no more than their limit, the firewall's per-CPU hit counters add up.

Each test runs one unattached program through BPF_PROG_TEST_RUN from two threads, each pinned to its own CPU,
at the same time (ctypes lets go of the GIL for the syscall), on a frozen test clock so that the limit is an
exact count: a lost update between the CPUs would show as more admissions than the limit allows.
"""

import os
import threading

import packets
import pytest
from conftest import BPF
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf, maps

REPEAT = 100000  # runs per CPU
SYN = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="203.0.113.7", dst="198.18.0.1")
            / TCP(sport=40000, dport=22, flags="S"))

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")


def load(objects, pins, name, config, prog_type=libbpf.PROG_TYPE_XDP):
    prog = packets.Unattached(objects["build"](os.path.join(BPF, name + ".bpf.c")), os.path.join(pins, name), config,
                              prog_type)
    if "ws_clock" in prog.maps:
        mapsync.sync(prog.maps["ws_clock"], entries={0: {"offset_ns": 0, "frozen_ns": 10 ** 12}})
    return prog


def both_cpus(prog, frame):
    """Run `frame` REPEAT times on each of two CPUs at once; returns {cpu: XDP/TC action counters of that CPU}."""
    cpus, errors, start = sorted(os.sched_getaffinity(0))[:2], [], threading.Barrier(2)

    def hammer(cpu):
        try:
            os.sched_setaffinity(0, {cpu})  # this thread only
            start.wait(10)
            libbpf.test_run(prog.fd, frame, REPEAT)
        except (OSError, threading.BrokenBarrierError) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(cpu,)) for cpu in cpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return info.action_counters(prog.maps["ws_stats"])


INITIATION = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="203.0.113.8")
                   / UDP(sport=40000, dport=51820) / (b"\x01\0\0\0" + b"\xab" * 144))
LIMITERS = {  # program: (config, hook, flood, admissions the limit allows on a clock that does not move)
    "ssh_limiter": ({"ports": [22], "max_new": 5, "window_ms": 60000, "ban_s": 600}, libbpf.PROG_TYPE_XDP, SYN, 5),
    "wireguard_filter": ({"ports": [51820], "handshake_limit": 7, "window_ms": 60000, "ban_s": 0},
                         libbpf.PROG_TYPE_XDP, INITIATION, 7),
    # the bucket holds burst + 1 connections
    "conn_limiter": ({"interval_ns": 10 ** 12, "burst": 9}, libbpf.PROG_TYPE_SCHED_CLS, SYN, 10),
}


@pytest.mark.parametrize("name", sorted(LIMITERS))
def test_a_limiter_admits_its_limit_and_no_more_from_two_cpus(objects, pins, name):
    config, prog_type, flood, limit = LIMITERS[name]
    prog = load(objects, pins, name, config, prog_type)
    try:
        counted = both_cpus(prog, flood)
    finally:
        prog.close()
    assert counted["pass"]["packets"] == limit and counted["drop"]["packets"] == 2 * REPEAT - limit, counted


def test_firewall_hits_from_two_cpus_add_up(objects, pins):
    """deny_v4's entry takes one slot of the per-CPU deny_hits on its first hit, whichever CPU hits first: each
    CPU counts its own hits there, every reader sums them (none is lost, no second slot taken)."""
    prog = load(objects, pins, "firewall", {})
    mapsync.sync(prog.maps["deny_v4"], entries=["203.0.113.7"], key_type="ipv4")
    try:
        counted = both_cpus(prog, SYN)
        with maps.PinnedMap(prog.maps["deny_v4"]) as pinned:
            assert pinned.type == maps.HASH  # memory per entry does not grow with the CPUs
            slots = [int.from_bytes(v[:8], "little") for v in pinned.dump().values()]
        with maps.PinnedMap(prog.maps["deny_hits"]) as hits:
            raw = hits.dump()[slots[0].to_bytes(4, "little")]
            per_cpu = [int.from_bytes(raw[i * hits.stride:i * hits.stride + 8], "little") for i in range(hits.ncpu)]
        with maps.PinnedMap(prog.maps["deny_hits_next"]) as taken:
            # the entry keeps one slot; two CPUs racing on the very first hit may have taken one more
            assert 1 <= slots[0] <= int.from_bytes(taken.dump()[bytes(4)][:8], "little") <= 2, slots
        top = info.top_denied({"deny_v4": prog.maps["deny_v4"]}, 3)
        shown = mapsync.sync(prog.maps["deny_v4"], key_type="ipv4", value_type="u64", return_entries=True)["entries"]
    finally:
        prog.close()
    assert counted["drop"]["packets"] == 2 * REPEAT
    assert sorted(per_cpu, reverse=True)[:2] == [REPEAT, REPEAT], per_cpu  # each CPU its own counter
    assert [(t["map"], t["packets"]) for t in top] == [("deny_v4", 2 * REPEAT)], top  # datapath_info's sum
    assert shown[0]["value"] == 2 * REPEAT and sorted(shown[0]["per_cpu"], reverse=True)[:2] == [REPEAT, REPEAT]
