# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall program: packet tables through BPF_PROG_TEST_RUN, a differential test, and real traffic."""

import ipaddress
import os
import random

import pytest
from conftest import BPF
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf

XDP_ABORTED, XDP_DROP, XDP_PASS = 0, 1, 2
FIREWALL = os.path.join(BPF, "firewall.bpf.c")

DENY_V4 = ["203.0.113.7", "198.51.100.99"]
DENY_NET_V4 = ["192.0.2.0/24", "10.66.0.0/16"]
ALLOW_V4 = ["10.66.1.0/24"]  # inside a denied network: allow wins
DENY_V6 = ["2001:db8::bad"]
DENY_NET_V6 = ["2001:db8:dead::/48"]
ALLOW_V6 = ["2001:db8:dead:beef::/64"]
PORT_RULES = [("tcp", 8080), ("udp", 5353), ("icmp", 0)]
CLEAN_V4, CLEAN_V6 = "198.18.0.5", "2001:db8:1::5"
PROTO = {"tcp": 6, "udp": 17, "icmp": 1}


@pytest.fixture
def firewall(dut, objects):
    """The firewall deployed on the dut, its lists filled through xdp_map_entry's engine."""
    obj = objects["build"](FIREWALL)

    def setup(**config):
        result = dut.deploy("fw", obj, config=config)
        maps = result["maps"]
        for name, entries, key_type in (
                ("deny_v4", DENY_V4, "ipv4"), ("deny_net_v4", DENY_NET_V4, None), ("allow_v4", ALLOW_V4, None),
                ("deny_v6", DENY_V6, "ipv6"), ("deny_net_v6", DENY_NET_V6, None), ("allow_v6", ALLOW_V6, None)):
            mapsync.sync(maps[name], entries=entries, key_type=key_type, exclusive=True)
        rules = ["%s/%d" % (p, port) if port else p for p, port in PORT_RULES]
        mapsync.sync(maps["deny_ports"], entries=rules, exclusive=True)
        fd = libbpf.obj_get(os.path.join(dut.pin_root, "fw", "prog"))
        return fd, maps
    return setup


def reasons(maps):
    return {k: v["packets"] for k, v in info.reason_counters(maps["ws_reasons"]).items()}


def eth(*inner):
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for layer in inner:
        frame = frame / layer
    return bytes(frame)


TABLE = [
    # (description, packet bytes, verdict, reason)
    ("clean IPv4 UDP", eth(IP(src=CLEAN_V4, dst="198.18.0.1") / UDP(dport=53)), XDP_PASS, None),
    ("denied IPv4 address", eth(IP(src="203.0.113.7", dst="198.18.0.1") / UDP(dport=53)), XDP_DROP, "deny_addr"),
    ("IPv4 inside a denied network", eth(IP(src="192.0.2.200") / TCP(dport=22)), XDP_DROP, "deny_cidr"),
    ("allow list beats the denied network", eth(IP(src="10.66.1.9") / TCP(dport=8080)), XDP_PASS, None),
    ("denied TCP port", eth(IP(src=CLEAN_V4) / TCP(dport=8080)), XDP_DROP, "deny_port"),
    ("neighbouring TCP port", eth(IP(src=CLEAN_V4) / TCP(dport=8081)), XDP_PASS, None),
    ("denied UDP port, not TCP", eth(IP(src=CLEAN_V4) / TCP(dport=5353)), XDP_PASS, None),
    ("denied UDP port", eth(IP(src=CLEAN_V4) / UDP(dport=5353)), XDP_DROP, "deny_port"),
    ("whole protocol denied: ICMP", eth(IP(src=CLEAN_V4) / ICMP()), XDP_DROP, "deny_port"),
    ("IPv4 options before TCP", eth(IP(src=CLEAN_V4, options=[IPOption_NOP()] * 8) / TCP(dport=8080)),
     XDP_DROP, "deny_port"),
    ("802.1Q tagged", eth(Dot1Q(vlan=10) / IP(src=CLEAN_V4) / TCP(dport=8080)), XDP_DROP, "deny_port"),
    ("QinQ tagged", eth(Dot1AD(vlan=20) / Dot1Q(vlan=10) / IP(src="203.0.113.7") / UDP()), XDP_DROP, "deny_addr"),
    ("IPv4 first fragment has ports", eth(IP(src=CLEAN_V4, flags="MF", frag=0) / TCP(dport=8080)),
     XDP_DROP, "deny_port"),
    ("IPv4 later fragment has none", eth(IP(src=CLEAN_V4, frag=100, proto=6) / (b"\x1f\x90" * 10)),
     XDP_PASS, None),
    ("IPv4 later fragment, address rules still apply", eth(IP(src="203.0.113.7", frag=100, proto=6) / (b"x" * 20)),
     XDP_DROP, "deny_addr"),
    ("clean IPv6 TCP", eth(IPv6(src=CLEAN_V6) / TCP(dport=22)), XDP_PASS, None),
    ("denied IPv6 address", eth(IPv6(src="2001:db8::bad") / UDP()), XDP_DROP, "deny_addr"),
    ("IPv6 inside a denied network", eth(IPv6(src="2001:db8:dead:1::1") / UDP()), XDP_DROP, "deny_cidr"),
    ("IPv6 allow list beats the denied network", eth(IPv6(src="2001:db8:dead:beef::1") / TCP(dport=8080)),
     XDP_PASS, None),
    ("IPv6 extension header chain before TCP",
     eth(IPv6(src=CLEAN_V6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting() / TCP(dport=8080)),
     XDP_DROP, "deny_port"),
    ("IPv6 first fragment has ports",
     eth(IPv6(src=CLEAN_V6) / IPv6ExtHdrFragment(offset=0, m=1, nh=6) / TCP(dport=8080)), XDP_DROP, "deny_port"),
    ("IPv6 later fragment has none",
     eth(IPv6(src=CLEAN_V6) / IPv6ExtHdrFragment(offset=10, nh=6) / (b"\x1f\x90" * 10)), XDP_PASS, None),
    ("ARP is not ours to judge", eth(ARP(psrc="203.0.113.7")), XDP_PASS, None),
    ("truncated: Ethernet only, IPv4 type", eth()[:12] + b"\x08\x00", XDP_DROP, "malformed"),
    ("truncated: half an IPv4 header", eth(IP(src=CLEAN_V4) / TCP())[:24], XDP_DROP, "malformed"),
    ("IHL below 5", eth(IP(src=CLEAN_V4, ihl=4) / UDP()), XDP_DROP, "malformed"),
    ("IHL beyond the packet", eth(IP(src=CLEAN_V4, ihl=15) / UDP())[:40], XDP_DROP, "malformed"),
    ("truncated TCP header", eth(IP(src=CLEAN_V4) / TCP(dport=22))[:14 + 20 + 10], XDP_DROP, "malformed"),
    ("truncated UDP header", eth(IP(src=CLEAN_V4) / UDP(dport=53))[:14 + 20 + 4], XDP_DROP, "malformed"),
    ("truncated IPv6 header", eth(IPv6(src=CLEAN_V6) / UDP())[:14 + 30], XDP_DROP, "malformed"),
    ("truncated IPv6 extension header", eth(IPv6(src=CLEAN_V6) / IPv6ExtHdrDestOpt() / UDP())[:14 + 40 + 4],
     XDP_DROP, "malformed"),
    ("truncated VLAN tag", eth(Dot1Q(vlan=1) / IP())[:16], XDP_DROP, "malformed"),
]


@pytest.mark.parametrize("description,packet,verdict,reason", TABLE, ids=[t[0] for t in TABLE])
def test_packet_table(firewall, description, packet, verdict, reason):
    fd, maps = firewall()
    try:
        before = reasons(maps)
        retval, _out, _ns = libbpf.test_run(fd, packet)
        after = reasons(maps)
    finally:
        os.close(fd)
    assert retval == verdict, description
    changed = {k for k in after if after[k] != before[k]}
    assert changed == ({reason} if reason else set()), description


def test_default_policy_drop(firewall):
    fd, maps = firewall(default_drop=1)
    try:
        # counted around the one test run: the attached program also sees what the kernel itself sends on the
        # test's veth (IPv6 router solicitations), which the default policy drops too
        before = reasons(maps)["default_policy"]
        assert libbpf.test_run(fd, eth(IP(src=CLEAN_V4) / UDP(dport=53)))[0] == XDP_DROP
        assert reasons(maps)["default_policy"] - before == 1
        assert libbpf.test_run(fd, eth(IP(src="10.66.1.9") / UDP(dport=53)))[0] == XDP_PASS  # allow list
    finally:
        os.close(fd)


def test_per_entry_hit_counters(firewall):
    fd, maps = firewall()
    try:
        for _i in range(3):
            libbpf.test_run(fd, eth(IP(src="203.0.113.7") / UDP()))
        entries = mapsync.sync(maps["deny_v4"], key_type="ipv4", value_type="u64", return_entries=True)["entries"]
        assert {e["key"]: e["value"] for e in entries} == {"203.0.113.7": 3, "198.51.100.99": 0}
    finally:
        os.close(fd)


# ---- differential test: the kernel against a small model of the rules ------------------

def model(spec):
    """(verdict, reason) the firewall must give the packet described by spec."""
    if spec["malformed"]:
        return XDP_DROP, "malformed"
    if spec["family"] == 0:
        return XDP_PASS, None
    src = ipaddress.ip_address(spec["src"])
    allow = ALLOW_V4 if src.version == 4 else ALLOW_V6
    if any(src in ipaddress.ip_network(n) for n in allow):
        return XDP_PASS, None
    if str(src) in (DENY_V4 if src.version == 4 else [str(ipaddress.ip_address(a)) for a in DENY_V6]):
        return XDP_DROP, "deny_addr"
    if any(src in ipaddress.ip_network(n) for n in (DENY_NET_V4 if src.version == 4 else DENY_NET_V6)):
        return XDP_DROP, "deny_cidr"
    rules = {(PROTO[p], port) for p, port in PORT_RULES}
    if (spec["proto"], 0) in rules:
        return XDP_DROP, "deny_port"
    if spec["l4_present"] and spec["proto"] in (6, 17) and spec["dport"] and (spec["proto"], spec["dport"]) in rules:
        return XDP_DROP, "deny_port"
    return XDP_PASS, None


SOURCES_V4 = DENY_V4 + ["192.0.2.1", "10.66.1.1", "10.66.2.2", CLEAN_V4, "198.18.7.7"]
SOURCES_V6 = DENY_V6 + ["2001:db8:dead::1", "2001:db8:dead:beef::9", CLEAN_V6, "2001:db8:2::2"]


def generate(rng):
    """A random packet and what the model needs to know about it."""
    spec = {"family": rng.choice([4, 4, 6, 6, 0]), "malformed": False, "l4_present": True, "dport": 0}
    vlans = rng.choice([0, 0, 1, 2])
    layers = []
    if vlans == 2:
        layers.append(Dot1AD(vlan=rng.randrange(1, 4095)))
    if vlans >= 1:
        layers.append(Dot1Q(vlan=rng.randrange(1, 4095)))
    spec["proto"] = rng.choice([6, 6, 17, 17, 1, 47])
    spec["dport"] = rng.choice([8080, 8081, 5353, 53, 0, rng.randrange(1, 65536)])
    if spec["proto"] == 6:
        l4 = TCP(dport=spec["dport"], sport=rng.randrange(1, 65536))
        l4_len = 20
    elif spec["proto"] == 17:
        l4 = UDP(dport=spec["dport"], sport=rng.randrange(1, 65536))
        l4_len = 8
    else:
        l4, l4_len = (ICMP() if spec["proto"] == 1 else b"\x00" * 8), 0
    if spec["family"] == 0:
        layers.append(ARP())
        parsed = 14 + 4 * vlans
    elif spec["family"] == 4:
        spec["src"] = rng.choice(SOURCES_V4)
        options = rng.choice([0, 0, 4, 8])
        frag = rng.choice([0, 0, 0, 1, 2])  # 1: first fragment, 2: later fragment
        ip = IP(src=spec["src"], dst="198.18.0.1", proto=spec["proto"],
                options=[IPOption_NOP()] * options, flags="MF" if frag == 1 else 0, frag=100 if frag == 2 else 0)
        spec["l4_present"] = frag != 2
        layers += [ip, l4]
        parsed = 14 + 4 * vlans + 20 + options
    else:
        spec["src"] = rng.choice(SOURCES_V6)
        if spec["proto"] == 1:  # ICMP rides IPv6 as ICMPv6 (58), which the ICMP rule does not cover
            spec["proto"], l4 = 58, b"\x80\x00\x00\x00\x00\x00\x00\x00"
        headers = [IPv6(src=spec["src"], dst="2001:db8::1")]
        parsed = 14 + 4 * vlans + 40
        for _i in range(rng.choice([0, 0, 1, 2, 3])):
            ext = rng.choice([IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting])()
            headers.append(ext)
            parsed += len(bytes(ext / b""))
        frag = rng.choice([0, 0, 0, 1, 2])
        if frag:
            headers.append(IPv6ExtHdrFragment(offset=0 if frag == 1 else 10, m=1 if frag == 1 else 0))
            parsed += 8
        headers[-1].nh = spec["proto"]  # say what follows, whatever the payload class is
        spec["l4_present"] = frag != 2
        layers += headers + [l4]
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / _chain(layers))
    if spec["family"] and spec["l4_present"] and spec["proto"] in (6, 17):
        parsed += l4_len
    if rng.random() < 0.2 and len(frame) > 14:  # cut it somewhere
        cut = rng.randrange(14, len(frame))
        frame = frame[:cut]
        spec["malformed"] = cut < parsed  # inside a header the program reads (VLAN tags even before ARP)
    return frame, spec


def _chain(layers):
    packet = layers[0]
    for layer in layers[1:]:
        packet = packet / layer
    return packet


def test_differential_10000_packets(firewall):
    fd, maps = firewall()
    rng = random.Random(20261123)
    expected = {}
    mismatches = []
    try:
        before = reasons(maps)
        for i in range(10000):
            frame, spec = generate(rng)
            want = model(spec)
            got, _out, _ns = libbpf.test_run(fd, frame)
            assert got != XDP_ABORTED, "XDP_ABORTED on packet %d: %s" % (i, frame.hex())
            if got != want[0]:
                mismatches.append((i, spec, got, want, frame.hex()))
            if want[1]:
                expected[want[1]] = expected.get(want[1], 0) + 1
        after = reasons(maps)
    finally:
        os.close(fd)
    assert mismatches == [], "%d mismatches, first: %s" % (len(mismatches), mismatches[:3])
    counted = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    assert counted == expected
    assert len(expected) >= 4  # the generator reached every kind of drop


def test_end_to_end_on_veth(firewall, dut):
    """Real packets from the peer: the peer's address denied, then allowed; counters say why."""
    _fd, maps = firewall()
    os.close(_fd)
    assert dut.udp(7000) == 20 and dut.udp(5353) == 0  # clean source; the UDP 5353 rule drops
    mapsync.sync(maps["deny_v4"], entries=[dut.peer_ip], key_type="ipv4")
    assert dut.udp(7000) == 0
    mapsync.sync(maps["allow_v4"], entries=["%s/32" % dut.peer_ip])
    assert dut.udp(7000) == 20 and dut.udp(5353) == 20  # the allow list comes first
    counted = reasons(maps)
    assert counted["deny_addr"] >= 20 and counted["deny_port"] >= 20
