# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dscp_marking (TC): the DSCP a receiver reads (IP_RECVTOS, IPV6_RECVTCLASS) on v4 and v6, a packet table
whose marked packets must carry valid checksums, and the program against a Python model."""

import os
import random
import socket
import struct

import packets
import pytest
from conftest import BPF
from netlab import netns, run
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.layers.l2 import Dot1Q, Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _qos

SRC = os.path.join(BPF, "dscp_marking.bpf.c")
TC_ACT_UNSPEC = 0xFFFFFFFF
IP_RECVTOS, IPV6_RECVTCLASS, IPV6_TCLASS = 13, 66, 67
EF, AF41, CS1, CS6 = 46, 34, 8, 48
RULES = [{"proto": "udp", "port": 7500, "dscp": "EF"},
         {"proto": "udp", "port": "7510-7519", "dscp": "AF41"},
         {"proto": "tcp", "port": 7522, "dscp": "CS6", "match": "source"},
         {"proto": "tcp", "port": "7530-7531", "dscp": 10, "match": "destination"}]


def deploy(dut, objects, direction="egress", rules=None, **config):
    rules = RULES if rules is None else rules
    result = dut.tc_deploy("dscp_marking_" + direction, objects["build"](SRC), direction=direction, priority=7,
                           config=config)
    mapsync.sync(result["maps"]["rules"], entries=_qos.dscp_rules(rules, "rules")[direction], exclusive=True)
    return result["maps"]


@pytest.fixture
def v6(dut):
    """IPv6 addresses on both ends (no DAD wait)."""
    octet = dut.dut_ip.split(".")[2]
    mine, theirs = "2001:db8:%s::1" % octet, "2001:db8:%s::2" % octet
    run(["ip", "-n", dut.dut, "addr", "add", mine + "/64", "dev", dut.ifname, "nodad"])
    run(["ip", "-n", dut.peer, "addr", "add", theirs + "/64", "dev", dut.peer_if, "nodad"])
    return mine, theirs


def classes_seen(dut, dst, port, tos=0, count=4):
    """Send `count` datagrams from dut to the peer (dst:port) with TOS / traffic class `tos`; return the
    TOS / traffic class bytes the peer's socket read (a bad IPv4 checksum would be dropped by the kernel)."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with netns(dut.peer):
        rx = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET:
        rx.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    else:
        rx.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
    rx.bind((dst, port))
    rx.settimeout(1.0)
    with netns(dut.dut):
        tx = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET:
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    else:
        tx.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, tos)
    seen = []
    try:
        for i in range(count):
            tx.sendto(b"d%d" % i, (dst, port))
        for _i in range(count):
            try:
                _data, anc, _flags, _addr = rx.recvmsg(64, socket.CMSG_SPACE(4))
            except socket.timeout:
                break
            for level, kind, data in anc:
                if (level, kind) in ((socket.IPPROTO_IP, 1), (socket.IPPROTO_IPV6, IPV6_TCLASS)):
                    seen.append(data[0] if len(data) == 1 else struct.unpack("i", data[:4])[0])
    finally:
        rx.close()
        tx.close()
    return seen


def test_receiver_reads_the_dscp_on_v4_and_v6(dut, objects, v6):
    _mine, theirs = v6
    deploy(dut, objects)
    for dst in (dut.peer_ip, theirs):
        assert classes_seen(dut, dst, 7500) == [EF << 2] * 4, dst
        assert classes_seen(dut, dst, 7515) == [AF41 << 2] * 4, dst  # inside the range
        assert classes_seen(dut, dst, 7500, tos=1) == [EF << 2 | 1] * 4, dst  # ECN bits kept (ECT(1))
        assert classes_seen(dut, dst, 7520, tos=CS1 << 2) == [CS1 << 2] * 4, dst  # unmatched: its own DSCP
        assert classes_seen(dut, dst, 7509) == [0] * 4, dst  # just outside the range


def test_trust_keeps_a_dscp_the_sender_set(dut, objects):
    deploy(dut, objects, trust=1)
    assert classes_seen(dut, dut.peer_ip, 7500, tos=CS1 << 2) == [CS1 << 2] * 4
    assert classes_seen(dut, dut.peer_ip, 7500) == [EF << 2] * 4


def test_ingress_marks_what_arrives(dut, objects):
    deploy(dut, objects, direction="ingress", rules=[{"proto": "udp", "port": 7600, "dscp": "CS6",
                                                      "direction": "ingress"}])
    with netns(dut.dut):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    rx.bind((dut.dut_ip, 7600))
    rx.settimeout(1.0)
    with netns(dut.peer):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tx.sendto(b"in", (dut.dut_ip, 7600))
        _data, anc, _flags, _addr = rx.recvmsg(64, socket.CMSG_SPACE(1))
    finally:
        rx.close()
        tx.close()
    assert [d[0] for lvl, kind, d in anc if kind == 1] == [CS6 << 2]


# ---- packet table through BPF_PROG_TEST_RUN -------------------------------------------------------------

def eth(*tags):
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for tag in tags:
        frame = frame / Dot1Q(vlan=tag)
    return frame


def v4_checksum_ok(raw, at):
    ihl = (raw[at] & 0xF) * 4
    total = sum(struct.unpack("!%dH" % (ihl // 2), raw[at:at + ihl]))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def l4_checksum_ok(raw):
    """The TCP/UDP checksum of the frame is what scapy computes afresh."""
    pkt = Ether(raw)
    layer = pkt[TCP] if TCP in pkt else pkt[UDP]
    got = layer.chksum
    del layer.chksum
    return Ether(bytes(pkt))[type(layer)].chksum == got


V4, V6 = dict(src="192.0.2.1", dst="198.51.100.1"), dict(src="2001:db8::1", dst="2001:db8:1::1")
TABLE = [
    # description, frame, DSCP expected afterwards (None: the frame must come out unchanged)
    ("v4 UDP to EF port", eth() / IP(**V4) / UDP(sport=1000, dport=7500) / (b"x" * 20), EF),
    ("v4 UDP from EF port (either side)", eth() / IP(**V4) / UDP(sport=7500, dport=1000), EF),
    ("v4 with ECN CE kept", eth() / IP(tos=3, **V4) / UDP(dport=7500), EF),
    ("v4 with options", eth() / IP(options=b"\x94\x04\x00\x00" * 2, **V4) / UDP(dport=7512), AF41),
    ("v4 in 802.1Q", eth(100) / IP(**V4) / UDP(dport=7519), AF41),
    ("v4 in QinQ", eth(100, 200) / IP(**V4) / UDP(dport=7510), AF41),
    ("v4 TCP source port rule", eth() / IP(**V4) / TCP(sport=7522, dport=40000, flags="SA"), CS6),
    ("v4 TCP source rule does not match destination", eth() / IP(**V4) / TCP(sport=40000, dport=7522), None),
    ("v4 TCP destination range", eth() / IP(tos=CS1 << 2, **V4) / TCP(dport=7531), 10),
    ("v4 TCP destination rule does not match source", eth() / IP(**V4) / TCP(sport=7530, dport=40000), None),
    ("v4 already right", eth() / IP(tos=EF << 2, **V4) / UDP(dport=7500), None),
    ("v4 unmatched port keeps its DSCP", eth() / IP(tos=AF41 << 2, **V4) / UDP(dport=7501), None),
    ("v4 later fragment", eth() / IP(frag=100, proto=17, **V4) / (b"\x1d\x4c" * 20), None),
    ("v4 truncated UDP header", (eth() / IP(**V4, proto=17) / b"\x1d\x4c\x1d"), None),
    ("v4 ICMP", eth() / IP(**V4) / b"\x08\x00\x00\x00\x00\x00\x00\x00", None),
    ("v6 UDP to EF port, ECN and flow label kept", eth() / IPv6(tc=2, fl=0xABCDE, **V6) / UDP(dport=7500), EF),
    ("v6 through extension headers", eth() / IPv6(**V6) / IPv6ExtHdrDestOpt() / UDP(dport=7511), AF41),
    ("v6 first fragment", eth() / IPv6(**V6) / IPv6ExtHdrFragment(m=1) / UDP(dport=7500), EF),
    ("v6 later fragment", eth() / IPv6(**V6) / IPv6ExtHdrFragment(offset=5, nh=17) / (b"\x1d\x4c" * 8), None),
    ("v6 in 802.1Q, TCP", eth(7) / IPv6(fl=1, **V6) / TCP(sport=7522), CS6),
    ("ARP", eth() / b"\x00\x01\x08\x00\x06\x04\x00\x01" / (b"\0" * 20), None),
]


@pytest.fixture
def unattached(dut, objects):
    prog = packets.Unattached(objects["build"](SRC), os.path.join(dut.pin_root, "dscp_table"))
    mapsync.sync(prog.maps["rules"], entries=_qos.dscp_rules(RULES, "rules")["egress"])
    yield prog
    prog.close()


@pytest.mark.parametrize("case", range(len(TABLE)), ids=[c[0] for c in TABLE])
def test_packet_table(unattached, case):
    _description, layers, dscp = TABLE[case]
    frame = bytes(layers)
    verdict, out = unattached.run(frame)
    assert verdict == TC_ACT_UNSPEC and len(out) == len(frame)
    if dscp is None:
        assert out == frame
        return
    pkt = packets.parse(frame)
    at = pkt["l3"]
    changed = [i for i in range(len(frame)) if out[i] != frame[i]]
    if pkt["family"] == 4:
        assert out[at + 1] >> 2 == dscp and out[at + 1] & 3 == frame[at + 1] & 3  # DSCP set, ECN kept
        assert set(changed) <= {at + 1, at + 10, at + 11}  # TOS and the header checksum, nothing else
        assert v4_checksum_ok(out, at)
    else:
        word, before = struct.unpack("!I", out[at:at + 4])[0], struct.unpack("!I", frame[at:at + 4])[0]
        assert (word >> 22) & 0x3F == dscp
        assert word & 0xF03FFFFF == before & 0xF03FFFFF  # version, ECN, flow label kept
        assert set(changed) <= {at, at + 1}
    assert l4_checksum_ok(out)


# ---- the program against a model ------------------------------------------------------------------------

class Model:
    def __init__(self, rules):
        self.rules = []
        for rule in rules:
            low, high = _qos.port_range(rule["port"], "port")
            self.rules.append((_qos.DSCP_NAMES.get(str(rule["dscp"]).lower(), rule["dscp"]),
                               {"tcp": 6, "udp": 17}[rule["proto"]], low, high, rule.get("match", "either")))

    def find(self, proto, port, side):
        for dscp, p, low, high, match in self.rules:
            if p == proto and low <= port <= high and match in ("either", side):
                return int(dscp)
        return None

    def output(self, frame, trust=False):
        pkt = packets.parse(frame)
        if pkt is None or not pkt["l4_present"] or pkt["proto"] not in (6, 17):
            return frame
        dscp = self.find(pkt["proto"], pkt["dport"], "destination")
        if dscp is None:
            dscp = self.find(pkt["proto"], pkt["sport"], "source")
        if dscp is None:
            return frame
        at, out = pkt["l3"], bytearray(frame)
        if pkt["family"] == 4:
            if trust and out[at + 1] & 0xFC:
                return frame
            old = struct.unpack("!H", frame[at:at + 2])[0]
            new = (old & 0xFF03) | (dscp << 2)
            out[at + 1] = new & 0xFF
            # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
            check = struct.unpack("!H", frame[at + 10:at + 12])[0]
            total = (~check & 0xFFFF) + (~old & 0xFFFF) + new
            while total >> 16:
                total = (total & 0xFFFF) + (total >> 16)
            out[at + 10:at + 12] = struct.pack("!H", ~total & 0xFFFF)
        else:
            old = struct.unpack("!H", frame[at:at + 2])[0]
            if trust and old & 0x0FC0:
                return frame
            out[at:at + 2] = struct.pack("!H", (old & 0xF03F) | (dscp << 6))
        return bytes(out)


def test_differential_against_a_model(dut, objects):
    """11000 frames (a tenth malformed, truncated or not IP), with and without trust: every output byte the
    model's."""
    rng = random.Random(31)
    udp_ports = ((1000, 7500), (7500, 1000), (1000, 7509), (1, 7510), (2, 7519), (3, 7520), (7515, 4))
    l4s = [UDP(sport=s, dport=d) for s, d in udp_ports]
    l4s += [TCP(sport=s, dport=d) for s, d in ((7522, 5), (6, 7522), (7, 7530), (7531, 8), (9, 7531), (7500, 10))]
    mismatches, marked = [], 0
    for trust in (0, 1):
        prog = packets.Unattached(objects["build"](SRC), os.path.join(dut.pin_root, "dscp_diff%d" % trust),
                                  {"trust": trust})
        try:
            mapsync.sync(prog.maps["rules"], entries=_qos.dscp_rules(RULES, "rules")["egress"])
            model = Model(RULES)
            for i in range(5500):
                frame = packets.random_frame(rng, ["198.51.100.1"], ["2001:db8:1::1"], l4s,
                                             tos=rng.choice([0, 1, 3, CS1 << 2, EF << 2, AF41 << 2 | 2]))
                verdict, out = prog.run(frame)
                want = model.output(frame, trust)
                marked += want != frame
                if verdict != TC_ACT_UNSPEC or out != want:
                    mismatches.append((trust, i, frame.hex(), out.hex(), want.hex()))
        finally:
            prog.close()
    assert mismatches == [], mismatches[:3]
    assert marked > 2000
