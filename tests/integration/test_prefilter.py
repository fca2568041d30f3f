# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall's IPv4 prefilter (indexes/prefilter.py) can only cost time: a listed source is dropped whether the index
is missing, never built, left stale with extra bits, interrupted half-way through a sync, or refreshed while
packets run; an unlisted one passes."""

import ipaddress
import mmap
import os
import random
import struct
import threading

import packets
import pytest
from conftest import BPF
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.indexes import prefilter
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf, maps

XDP_DROP, XDP_PASS = 1, 2
LISTED, CLEAN, NEIGHBOUR = "203.0.113.7", "198.18.0.9", "203.0.113.8"  # NEIGHBOUR: unlisted, LISTED's /24
NETS = ("100.64.0.0/12", "192.0.2.16/28")


def frame(src):
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst="198.51.100.1")
                 / UDP(sport=1, dport=53) / (b"x" * 18))


@pytest.fixture
def fw(objects, pins):
    prog = packets.Unattached(objects["build"](os.path.join(BPF, "firewall.bpf.c")),
                              os.path.join(pins, "fw%05x" % random.randrange(1 << 20), "maps"), {},
                              libbpf.PROG_TYPE_XDP)
    try:
        yield prog
    finally:
        prog.close()


def verdicts(prog):
    return {src: prog.run(frame(src))[0] for src in (LISTED, CLEAN, NEIGHBOUR, "100.70.1.2", "192.0.2.20")}


LISTED_DROPPED = {LISTED: XDP_DROP, CLEAN: XDP_PASS, NEIGHBOUR: XDP_PASS, "100.70.1.2": XDP_DROP,
                  "192.0.2.20": XDP_DROP}


def raw_lists(prog):
    """Write the lists behind the engine's back (as bpftool would): the index is not told."""
    with maps.PinnedMap(prog.maps["deny_v4"]) as m:
        m.write([(ipaddress.IPv4Address(LISTED).packed, bytes(m.slot_size))])
    with maps.PinnedMap(prog.maps["deny_net_v4"]) as m:
        m.write([(struct.pack("<I", int(n.split("/")[1])) + ipaddress.IPv4Network(n).network_address.packed,
                  bytes(8)) for n in NETS])


def engine_lists(prog, addrs=(LISTED,), nets=NETS):
    mapsync.sync(prog.maps["deny_v4"], entries=list(addrs), key_type="ipv4", exclusive=True, diff=False)
    mapsync.sync(prog.maps["deny_net_v4"], entries=list(nets), key_type="ipv4_cidr", exclusive=True, diff=False)


def index(prog):
    return prefilter.Prefilter(os.path.dirname(prog.maps["deny_v4"]))


def test_never_built_index_takes_the_full_lookups(fw):
    raw_lists(fw)
    assert index(fw).state()["generation"] == 0
    assert verdicts(fw) == LISTED_DROPPED


def test_engine_builds_verifies_and_shows_it(fw):
    engine_lists(fw)
    state = index(fw).state()
    assert state["generation"] > 0 and state["covered"] and state["slots"] == 1 + 4096 + 1  # /32, /12, /28
    assert verdicts(fw) == LISTED_DROPPED
    shown = info._program_entry(os.path.dirname(os.path.dirname(fw.maps["deny_v4"])), "",
                                {"hook": "xdp"}, None)["prefilter"]
    assert shown == state


def test_removed_entry_is_cleared_and_passes(fw):
    engine_lists(fw)
    engine_lists(fw, addrs=(), nets=NETS[:1])
    assert verdicts(fw)[LISTED] == XDP_PASS and verdicts(fw)["192.0.2.20"] == XDP_PASS
    assert index(fw).state()["slots"] == 4096


def test_stale_superset_costs_time_only(fw):
    engine_lists(fw)
    with maps.PinnedMap(fw.maps[prefilter.INDEX]) as m:  # every /24 marked: nothing can skip
        mm = mmap.mmap(m.fd, m.max_entries * m.value_size)
        mm[:] = b"\xff" * len(mm)
        mm.close()
    assert verdicts(fw) == LISTED_DROPPED


def test_entries_listed_behind_the_engine_are_covered_by_the_next_sync(fw):
    engine_lists(fw, addrs=["198.51.100.77"], nets=[])
    raw_lists(fw)  # drift: listed, not indexed
    engine_lists(fw, addrs=["198.51.100.77", LISTED], nets=NETS)  # the deny_v4 no-op for LISTED verifies the index
    assert index(fw).state()["covered"] and verdicts(fw) == LISTED_DROPPED


@pytest.mark.parametrize("fail_in", ["refresh", "write"])
def test_sync_interrupted_after_marking_never_lets_a_listed_source_through(fw, monkeypatch, fail_in):
    engine_lists(fw, addrs=["198.51.100.77"], nets=[])

    def boom(*_a, **_k):
        raise OSError(5, "interrupted")
    if fail_in == "refresh":
        monkeypatch.setattr(prefilter.Prefilter, "refresh", boom)
    else:
        monkeypatch.setattr(maps.PinnedMap, "write_packed", boom)
    with pytest.raises((OSError, DatapathError)):
        mapsync.sync(fw.maps["deny_v4"], entries=["198.51.100.77", LISTED], key_type="ipv4", diff=False)
    monkeypatch.undo()
    with maps.PinnedMap(fw.maps["deny_v4"]) as m:
        listed = ipaddress.IPv4Address(LISTED).packed in m.dump()
    assert fw.run(frame(LISTED))[0] == (XDP_DROP if listed else XDP_PASS)
    assert fw.run(frame("198.51.100.77"))[0] == XDP_DROP


def test_listed_source_dropped_while_the_lists_churn(fw):
    """One thread runs LISTED's packets non-stop while syncs add and remove 2000 entries of its /16 around it:
    every single run is a drop (each refresh rewrites the index word LISTED's bit lives in)."""
    rng = random.Random(5)
    engine_lists(fw, nets=[])
    stop, seen = threading.Event(), {}

    def hammer():
        while not stop.is_set():
            verdict = fw.run(frame(LISTED))[0]
            seen[verdict] = seen.get(verdict, 0) + 1

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for _round in range(8):
            others = ["203.0.%d.%d" % (rng.randrange(256), rng.randrange(1, 255)) for _i in range(2000)]
            engine_lists(fw, addrs=[LISTED] + others, nets=["203.0.%d.0/24" % rng.randrange(256)])
            engine_lists(fw, nets=[])
    finally:
        stop.set()
        thread.join()
    assert set(seen) == {XDP_DROP} and seen[XDP_DROP] > 100, seen


# ---- the allow index (one bit per /16 of allow_v4, allow.h) ---------------------------------------------------


def allow_index(prog):
    return prefilter.AllowPrefilter(os.path.dirname(prog.maps["allow_v4"]))


def engine_allow(prog, nets):
    mapsync.sync(prog.maps["allow_v4"], entries=list(nets), key_type="ipv4_cidr", exclusive=True, diff=False)


def test_allow_index_built_and_an_allowed_source_is_never_dropped(fw):
    """A listed source that is also allowed passes, through a /32, a /28 and a /8 allow entry; the engine builds
    the allow index on every allow sync (the /8: 256 /16s); removing the allow entry makes the source drop."""
    engine_lists(fw)
    engine_allow(fw, ["203.0.113.7/32", "100.0.0.0/8", "192.0.2.16/28"])
    state = allow_index(fw).state()
    assert state["generation"] > 0 and state["covered"] and state["slots"] == 1 + 256 + 1, state
    assert verdicts(fw) == {LISTED: XDP_PASS, CLEAN: XDP_PASS, NEIGHBOUR: XDP_PASS, "100.70.1.2": XDP_PASS,
                            "192.0.2.20": XDP_PASS}
    shown = info._program_entry(os.path.dirname(os.path.dirname(fw.maps["deny_v4"])), "",
                                {"hook": "xdp"}, None)["allow_prefilter"]
    assert shown == state
    engine_allow(fw, ["100.0.0.0/8"])
    assert verdicts(fw) == {**LISTED_DROPPED, "100.70.1.2": XDP_PASS}
    assert allow_index(fw).state()["slots"] == 256


def test_allow_entry_written_behind_the_engine_is_honoured_once_synced(fw):
    """An allow entry written straight into the trie while the index is in use is missed until the next allow
    sync covers it (the index is a superset of what the engine wrote); the sync that names it puts it right."""
    engine_lists(fw)
    engine_allow(fw, ["198.51.100.0/24"])
    with maps.PinnedMap(fw.maps["allow_v4"]) as m:  # as bpftool would: the index is not told
        m.write([(struct.pack("<I", 24) + ipaddress.IPv4Address("203.0.113.0").packed, bytes(8))])
    assert fw.run(frame(LISTED))[0] == XDP_DROP and not allow_index(fw).state()["covered"]
    engine_allow(fw, ["198.51.100.0/24", "203.0.113.0/24"])
    assert fw.run(frame(LISTED))[0] == XDP_PASS and allow_index(fw).state()["covered"]


def test_allow_sync_interrupted_after_marking_keeps_allowed_sources(fw, monkeypatch):
    engine_lists(fw)
    engine_allow(fw, ["198.51.100.0/24"])

    def boom(*_a, **_k):
        raise OSError(5, "interrupted")
    monkeypatch.setattr(prefilter.AllowPrefilter, "refresh", boom)
    with pytest.raises((OSError, DatapathError)):
        engine_allow(fw, ["198.51.100.0/24", "203.0.113.0/24"])
    monkeypatch.undo()
    assert fw.run(frame(LISTED))[0] == XDP_PASS  # written and covered: allowed even with the refresh lost
