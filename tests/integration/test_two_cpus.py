# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two CPUs at once: the limiters admit no more than their limit, the firewall's per-CPU hit counters add up.

Each test runs one unattached program through BPF_PROG_TEST_RUN from two threads, each pinned to its own CPU,
at the same time (ctypes lets go of the GIL for the syscall), on a frozen test clock so that the limit is an
exact count: a lost update between the CPUs would show as more admissions than the limit allows.
"""

import os
import random
import shutil
import threading

import packets
import pytest
from conftest import BPF
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs, libbpf, maps

REPEAT = 100000  # runs per CPU
SYN = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="203.0.113.7", dst="198.18.0.1")
            / TCP(sport=40000, dport=22, flags="S"))

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")


@pytest.fixture(scope="module")
def pins():
    bpffs.ensure_bpffs()
    root = os.path.join(bpffs.DEFAULT_BPFFS, "wstest2cpu%05x" % random.randrange(1 << 20))
    os.makedirs(root)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


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


def test_ssh_limiter_admits_max_new_syns_from_two_cpus(objects, pins):
    prog = load(objects, pins, "ssh_limiter", {"ports": [22], "max_new": 5, "window_ms": 60000, "ban_s": 600})
    try:
        counted = both_cpus(prog, SYN)
    finally:
        prog.close()
    assert counted["pass"]["packets"] == 5 and counted["drop"]["packets"] == 2 * REPEAT - 5, counted


def test_wireguard_filter_admits_the_handshake_limit_from_two_cpus(objects, pins):
    config = {"ports": [51820], "handshake_limit": 7, "window_ms": 60000, "ban_s": 0}
    prog = load(objects, pins, "wireguard_filter", config)
    initiation = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="203.0.113.8")
                       / UDP(sport=40000, dport=51820) / (b"\x01\0\0\0" + b"\xab" * 144))
    try:
        counted = both_cpus(prog, initiation)
    finally:
        prog.close()
    assert counted["pass"]["packets"] == 7 and counted["drop"]["packets"] == 2 * REPEAT - 7, counted


def test_conn_limiter_admits_its_burst_from_two_cpus(objects, pins):
    prog = load(objects, pins, "conn_limiter", {"interval_ns": 10 ** 12, "burst": 9}, libbpf.PROG_TYPE_SCHED_CLS)
    try:
        counted = both_cpus(prog, SYN)
    finally:
        prog.close()
    # the bucket holds burst + 1 connections; the clock does not move, so none comes back
    assert counted["pass"]["packets"] == 10 and counted["drop"]["packets"] == 2 * REPEAT - 10, counted


def test_firewall_hits_from_two_cpus_add_up(objects, pins):
    """deny_v4 is a per-CPU hash: each CPU counts its own hits, every reader sums them (none is lost)."""
    prog = load(objects, pins, "firewall", {})
    mapsync.sync(prog.maps["deny_v4"], entries=["203.0.113.7"], key_type="ipv4")
    try:
        counted = both_cpus(prog, SYN)
        with maps.PinnedMap(prog.maps["deny_v4"]) as pinned:
            assert pinned.type == maps.PERCPU_HASH
            per_cpu = [int.from_bytes(v[i * pinned.stride:i * pinned.stride + 8], "little")
                       for v in pinned.dump().values() for i in range(pinned.ncpu)]
        top = info.top_denied({"deny_v4": prog.maps["deny_v4"]}, 3)
        shown = mapsync.sync(prog.maps["deny_v4"], key_type="ipv4", value_type="u64", return_entries=True)["entries"]
    finally:
        prog.close()
    assert counted["drop"]["packets"] == 2 * REPEAT
    assert sorted(per_cpu, reverse=True)[:2] == [REPEAT, REPEAT], per_cpu  # each CPU its own counter
    assert [(t["map"], t["packets"]) for t in top] == [("deny_v4", 2 * REPEAT)], top  # datapath_info's sum
    assert shown[0]["value"] == 2 * REPEAT and sorted(shown[0]["per_cpu"], reverse=True)[:2] == [REPEAT, REPEAT]
