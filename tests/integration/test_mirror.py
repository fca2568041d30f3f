# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mirror (TC): copies counted on the target interface, originals delivered, matching and 1-in-N sampling."""

import os
import socket
import struct
import subprocess
import time

import pytest
from conftest import BPF
from netlab import netns
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel.maps import PinnedMap

MIRROR = os.path.join(BPF, "mirror.bpf.c")
TC_ACT_UNSPEC = 0xFFFFFFFF
ETH_P_ALL = 0x0003


@pytest.fixture
def tap(dut):
    """A target interface in the dut (wsm...) whose other end lives in a namespace of its own, for counting."""
    ns, here, there = "wstap" + dut.suffix, "wsm" + dut.suffix, "wsn" + dut.suffix
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", dut.dut, "link", "add", here, "type", "veth", "peer", "name", there,
                        "netns", ns], check=True)
        subprocess.run(["ip", "-n", dut.dut, "link", "set", here, "up"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", there, "up"], check=True)
        with netns(ns):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((there, 0))
        sock.settimeout(0.3)
        yield here, sock
        sock.close()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def udp_copies(sock, port):
    """Frames that reached the tap carrying UDP to `port` (IPv4, no options)."""
    seen = 0
    while True:
        try:
            frame = sock.recv(4096)
        except socket.timeout:
            return seen
        is_udp = len(frame) >= 38 and frame[12:14] == b"\x08\x00" and frame[23] == 17
        if is_udp and struct.unpack("!H", frame[36:38])[0] == port:
            seen += 1


def deploy(dut, objects, target, direction="ingress", **config):
    result = dut.tc_deploy("mirror", objects["build"](MIRROR), direction=direction, config=config, priority=5)
    maps = result["maps"]
    with netns(dut.dut):
        mapsync.sync(maps["target"], entries={0: target}, value_type="ifindex")
    return maps


def stats(maps):
    with PinnedMap(maps["mirror_stats"]) as m:
        raw = m.dump()
    out = []
    for key in sorted(raw, key=lambda k: struct.unpack("I", k)[0]):
        value = raw[key]
        out.append(sum(struct.unpack_from("Q", value, i * m.stride)[0] for i in range(m.ncpu)))
    return out  # matched, mirrored, failed


def test_ingress_copies_arrive_and_originals_are_delivered(dut, objects, tap):
    target, sock = tap
    maps = deploy(dut, objects, target, match_proto=17, ports=[7200])
    assert dut.udp(7200) == 20 and dut.udp(7201) == 20  # originals all delivered
    assert udp_copies(sock, 7200) == 20  # one copy each, of the matching port only
    assert udp_copies(sock, 7201) == 0
    assert stats(maps)[:2] == [20, 20]


def test_egress_copies(dut, objects, tap):
    target, sock = tap
    maps = deploy(dut, objects, target, direction="egress", match_proto=17)
    with netns(dut.peer):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((dut.peer_ip, 7300))
    rx.settimeout(1)
    with netns(dut.dut):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(10):
            tx.sendto(b"e%d" % i, (dut.peer_ip, 7300))
        time.sleep(0.2)
        delivered = 0
        for _i in range(10):
            rx.recv(64)
            delivered += 1
    finally:
        rx.close()
        tx.close()
    assert delivered == 10
    assert udp_copies(sock, 7300) == 10
    assert stats(maps)[1] >= 10


def actions(maps):
    """Packets per action of the mirror's ws_stats, as datapath_info reads any program's."""
    return {k: v["packets"] for k, v in info.action_counters(maps["ws_stats"]).items()}


def test_ws_stats_count_every_packet_as_passed(dut, objects, tap):
    """A TC program's verdicts land on the XDP action indices: the mirror passes everything, copied or not."""
    target, sock = tap
    maps = deploy(dut, objects, target, match_proto=17, ports=[7200])
    before = actions(maps)
    assert dut.udp(7200) == 20 and dut.udp(7201) == 20
    assert udp_copies(sock, 7200) == 20
    with netns(dut.dut):
        facts = info.gather([dut.ifname], state_dir=dut.state_dir)[dut.ifname]
    mirror = facts["programs"]["mirror"]
    assert mirror["hook"] == "tc ingress"
    counted = {k: v["packets"] - before[k] for k, v in mirror["counters"].items()}
    assert counted["pass"] >= 40  # the 40 datagrams (and whatever ARP the link carried)
    assert counted["drop"] == counted["aborted"] == counted["tx"] == counted["redirect"] == 0  # a copy is no verdict
    assert mirror["counters"]["pass"]["bytes"] >= 40 * 42
    assert all(v["packets"] == 0 for v in mirror["drop_reasons"].values())
    assert stats(maps)[:2] == [20, 20]  # the copies are counted in mirror_stats

    fd = libbpf.obj_get(os.path.join(dut.pin_root, "mirror", "prog"))
    try:
        before = actions(maps)
        with netns(dut.dut):
            for _i in range(200):
                assert libbpf.test_run(fd, frame())[0] == TC_ACT_UNSPEC
        after = actions(maps)
    finally:
        os.close(fd)
    assert 200 <= after["pass"] - before["pass"] < 220 and after["drop"] == before["drop"]


def frame(src="198.18.0.9", dst="198.18.0.1", l4=None):
    ip = IP(src=src, dst=dst) if ":" not in src else IPv6(src=src, dst=dst)
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip / (l4 or UDP(sport=1234, dport=80)))


def test_matching_table(dut, objects, tap):
    target, _sock = tap
    maps = deploy(dut, objects, target, match_proto=6, ports=[443], match_nets=1)
    mapsync.sync(maps["nets_v4"], entries=["203.0.113.0/24"])
    mapsync.sync(maps["nets_v6"], entries=["2001:db8:cafe::/48"])
    fd = libbpf.obj_get(os.path.join(dut.pin_root, "mirror", "prog"))
    cases = [
        ("TCP to 443 from a watched network", frame("203.0.113.5", l4=TCP(sport=5555, dport=443)), 1),
        ("TCP from 443 to a watched network (reply direction)",
         frame("198.18.0.1", "203.0.113.5", TCP(sport=443, dport=5555)), 1),
        ("TCP to 443 outside the networks", frame("198.51.100.1", l4=TCP(dport=443)), 0),
        ("UDP to 443 from a watched network", frame("203.0.113.5", l4=UDP(dport=443)), 0),
        ("TCP to 80 from a watched network", frame("203.0.113.5", l4=TCP(sport=5555, dport=80)), 0),
        ("IPv6 TCP to 443 in a watched network", frame("2001:db8:cafe::1", "2001:db8::1", TCP(dport=443)), 1),
    ]
    try:
        with netns(dut.dut):
            for description, packet, matched in cases:
                before = stats(maps)[0]
                retval, out, _ns = libbpf.test_run(fd, packet)
                assert retval == TC_ACT_UNSPEC and out == packet, description  # the original goes on unchanged
                assert stats(maps)[0] - before == matched, description
    finally:
        os.close(fd)


def test_one_in_n_sampling(dut, objects, tap):
    target, _sock = tap
    maps = deploy(dut, objects, target, sample_n=4, match_proto=17, ports=[80])  # nothing else on the link matches
    fd = libbpf.obj_get(os.path.join(dut.pin_root, "mirror", "prog"))
    try:
        with netns(dut.dut):
            for _i in range(4000):
                libbpf.test_run(fd, frame())
    finally:
        os.close(fd)
    matched, sent, failed = stats(maps)
    assert matched == 4000
    assert 800 < sent + failed < 1200  # 1 in 4, binomial sd ~27


def test_differential_10000_packets(dut, objects, tap):
    """The kernel's match decision against a model, on random packets in both directions."""
    import ipaddress
    import random

    target, _sock = tap
    watched_ports, nets = [443, 8443], ["203.0.113.0/24", "2001:db8:cafe::/48"]
    maps = deploy(dut, objects, target, match_proto=6, ports=watched_ports, match_nets=1)
    mapsync.sync(maps["nets_v4"], entries=[nets[0]])
    mapsync.sync(maps["nets_v6"], entries=[nets[1]])
    rng = random.Random(5)
    v4 = ["203.0.113.%d" % i for i in (1, 200)] + ["198.51.100.1", "198.18.0.1"]
    v6 = ["2001:db8:cafe::1", "2001:db8:cafe:9::2", "2001:db8::1", "2001:db8:1::1"]
    fd = libbpf.obj_get(os.path.join(dut.pin_root, "mirror", "prog"))
    mismatches, expected_total = [], 0
    try:
        with netns(dut.dut):
            before = stats(maps)[0]
            for i in range(10000):
                pool = rng.choice([v4, v6])
                src, dst = rng.choice(pool), rng.choice(pool)
                proto = rng.choice([6, 6, 17])
                sport, dport = rng.choice([443, 8443, 80, 5555, 0]), rng.choice([443, 8443, 22, 6000])
                l4 = (TCP if proto == 6 else UDP)(sport=sport, dport=dport)
                want = (proto == 6 and sport != 0 and (sport in watched_ports or dport in watched_ports)
                        and any(ipaddress.ip_address(a) in ipaddress.ip_network(n)
                                for a in (src, dst) for n in nets
                                if ipaddress.ip_network(n).version == ipaddress.ip_address(a).version))
                expected_total += want
                retval, _out, _ns = libbpf.test_run(fd, frame(src, dst, l4))
                assert retval == TC_ACT_UNSPEC
                if stats(maps)[0] - before != expected_total:  # every packet: matched exactly when the model says
                    mismatches.append((i, src, dst, proto, sport, dport))
                    before += (stats(maps)[0] - before) - expected_total  # report each mismatch once
            total = stats(maps)[0] - before
    finally:
        os.close(fd)
    assert mismatches == [] and total == expected_total and expected_total > 500
