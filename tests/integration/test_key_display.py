# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Map keys shown to people are read with the map's own key type (its BTF), never as the integer of their bytes.

datapath_info's top_denied (which the fleet report's "Top denied entries" draws), bpf_map_entry's diff and
returned entries with no key_type given, and the status table's load balancer services: each against the real
programs' maps, the firewall's deny lists hit by packets run through BPF_PROG_TEST_RUN.
"""

import os
import random

import packets
import pytest
from conftest import BPF
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf, maps
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types.map_types import MapTypes

V4, V6 = "203.0.113.7", "2001:db8::7"
XDP_DROP = 1


def load(objects, pins, name, prog_type=libbpf.PROG_TYPE_XDP):
    return packets.Unattached(objects["build"](os.path.join(BPF, name + ".bpf.c")),
                              os.path.join(pins, "%s%05x" % (name, random.randrange(1 << 20)), "maps"), {}, prog_type)


@pytest.fixture
def fw(objects, pins):
    prog = load(objects, pins, "firewall")
    try:
        yield prog
    finally:
        prog.close()


def frame(src):
    ip = IP(src=src, dst="198.51.100.1") if ":" not in src else IPv6(src=src, dst="2001:db8::1")
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip / UDP(sport=1, dport=53) / b"x")


def test_top_denied_shows_deny_entries_as_addresses(fw):
    mapsync.sync(fw.maps["deny_v4"], entries=[V4], key_type="ipv4", diff=False)
    mapsync.sync(fw.maps["deny_v6"], entries=[V6], key_type="ipv6", diff=False)
    for src, times in ((V4, 3), (V6, 2)):
        for _time in range(times):
            assert fw.run(frame(src))[0] == XDP_DROP
    top = info.top_denied({"deny_v4": fw.maps["deny_v4"], "deny_v6": fw.maps["deny_v6"]}, 5)
    assert top == [{"map": "deny_v4", "entry": V4, "packets": 3}, {"map": "deny_v6", "entry": V6, "packets": 2}]


def test_a_sync_without_key_type_diffs_and_returns_the_lists_as_addresses(fw):
    for name in ("deny_v4", "deny_v6"):
        with maps.PinnedMap(fw.maps[name]) as pinned:
            assert MapTypes(pinned).key.name == ("ipv4" if name == "deny_v4" else "ipv6")
    mapsync.sync(fw.maps["deny_v4"], entries=[V4], key_type="ipv4", diff=False)
    mapsync.sync(fw.maps["deny_v6"], entries=[V6], key_type="ipv6", diff=False)
    shown = mapsync.sync(fw.maps["deny_v4"], entries=[], exclusive=True, check_mode=True, return_entries=True)
    assert shown["diff"]["prepared"] == "- %s\n" % V4 and shown["entries"][0]["key"] == V4
    shown = mapsync.sync(fw.maps["deny_v6"], entries=[], exclusive=True, check_mode=True, return_entries=True)
    assert shown["diff"]["prepared"] == "- %s\n" % V6 and shown["entries"][0]["key"] == V6
    # the struct's own form is still taken, and it is the same entry
    same = mapsync.sync(fw.maps["deny_v6"], entries=[{"addr": V6}], check_mode=True)
    assert not same["changed"]


def test_the_status_table_shows_a_service_as_its_vip(objects, pins):
    lb = load(objects, pins, "load_balancer")
    try:
        mapsync.sync(lb.maps["lb_services"], entries=[
            {"key": {"addr": "::ffff:192.0.2.10", "port": 80, "proto": "tcp"}, "value": {"index": 0, "size": 7}},
            {"key": {"addr": "2001:db8::10", "port": 0, "proto": 58}, "value": {"index": 1, "size": 7}}], diff=False)
        assert info._services(lb.maps["lb_services"]) == {0: "192.0.2.10 tcp/80", 1: "2001:db8::10 icmp"}
    finally:
        lb.close()
