# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Random frames (well-formed, malformed, truncated) and a Python model of parsing.h's ws_parse_packet(),
for the differential tests of the TC programs."""

import os
import struct

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether

EXT = (0, 43, 60, 44, 51)  # hop-by-hop, routing, destination options, fragment, AH
# BPF_PROG_TEST_RUN refuses an untagged IPv4/IPv6 frame shorter than its fixed IP header
KERNEL_MIN = {b"\x08\x00": 34, b"\x86\xdd": 54}


def parse(frame):
    """What ws_parse_packet() fills, as a dict, or None where it returns anything but WS_PKT_OK."""
    if len(frame) < 14:
        return None
    pos, proto = 14, frame[12:14]
    for _i in range(2):
        if proto not in (b"\x81\x00", b"\x88\xa8"):
            break
        if len(frame) < pos + 4:
            return None
        proto, pos = frame[pos + 2:pos + 4], pos + 4
    pkt = {"l3": pos, "l4_present": True, "sport": 0, "dport": 0, "flags": 0}
    if proto == b"\x08\x00":
        if len(frame) < pos + 20:
            return None
        ihl = (frame[pos] & 0xF) * 4
        if ihl < 20 or len(frame) < pos + ihl:
            return None
        pkt.update(family=4, src=frame[pos + 12:pos + 16], dst=frame[pos + 16:pos + 20])
        l4 = frame[pos + 9]
        if struct.unpack("!H", frame[pos + 6:pos + 8])[0] & 0x1FFF:
            pkt["l4_present"] = False
        pos += ihl
    elif proto == b"\x86\xdd":
        if len(frame) < pos + 40:
            return None
        pkt.update(family=6, src=frame[pos + 8:pos + 24], dst=frame[pos + 24:pos + 40])
        l4 = frame[pos + 6]
        pos += 40
        for _i in range(6):
            if l4 not in EXT:
                break
            if len(frame) < pos + 8:
                return None
            if l4 == 44:
                if struct.unpack("!H", frame[pos + 2:pos + 4])[0] & 0xFFF8:
                    pkt["l4_present"] = False
                size = 8
            elif l4 == 51:
                size = (frame[pos + 1] + 2) * 4
            else:
                size = (frame[pos + 1] + 1) * 8
            l4 = frame[pos]
            if len(frame) < pos + size:
                return None
            pos += size
        else:
            if l4 in EXT:
                return None
    else:
        return None
    pkt["proto"] = l4
    if pkt["l4_present"] and l4 == 17:
        if len(frame) < pos + 8:
            return None
        pkt["sport"], pkt["dport"] = struct.unpack("!HH", frame[pos:pos + 4])
    elif pkt["l4_present"] and l4 == 6:
        if len(frame) < pos + 20:
            return None
        doff = (frame[pos + 12] >> 4) * 4
        if doff < 20 or len(frame) < pos + doff:
            return None
        pkt["sport"], pkt["dport"] = struct.unpack("!HH", frame[pos:pos + 4])
        pkt["flags"] = frame[pos + 13]
    return pkt


def random_frame(rng, v4, v6, l4s, sources=("192.0.2.99",), sources6=("2001:db8::1",), payloads=(0, 100, 500, 1400),
                 tos=0):
    """A frame to one of the destinations v4/v6 with one of the L4 headers l4s (scapy layers, copied), often
    with VLAN tags, IPv4 options or fragments, IPv6 extension headers; some truncated, not IP, or with a bad IHL.
    Never one BPF_PROG_TEST_RUN refuses to run."""
    is_v6 = rng.random() < 0.35
    if is_v6:
        ip = IPv6(src=rng.choice(sources6), dst=rng.choice(v6), tc=tos, fl=rng.randrange(1 << 20))
        if rng.random() < 0.15:
            ip = ip / rng.choice([IPv6ExtHdrHopByHop(), IPv6ExtHdrFragment(offset=rng.choice([0, 8]))])
    else:
        ip = IP(src=rng.choice(sources), dst=rng.choice(v4), tos=tos, options=b"\x01" * rng.choice([0, 0, 4, 8]),
                frag=rng.choice([0, 0, 0, 0, 10]))
    l4 = rng.choice(l4s).copy()
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if rng.random() < 0.12:
        eth = eth / Dot1Q(vlan=rng.randrange(1, 4095))
        if rng.random() < 0.3:
            eth = eth / Dot1Q(vlan=rng.randrange(1, 4095))
    frame = bytes(eth / ip / l4 / (b"p" * rng.choice(payloads)))
    kind = rng.random()
    if kind < 0.08:  # truncated anywhere the kernel lets a test run start
        frame = frame[:rng.randrange(KERNEL_MIN.get(frame[12:14], 14), len(frame))]
    elif kind < 0.11:  # not IP
        frame = frame[:12] + b"\x08\x06" + frame[14:]
    elif kind < 0.13:  # IPv4 IHL below 5, or an IPv6 header that says version 4: both as the bytes say
        at = 14 + 4 * (frame[12:14] == b"\x81\x00") * (1 + (frame[16:18] == b"\x81\x00"))
        frame = frame[:at] + bytes([0x43]) + frame[at + 1:]
    return frame


class Unattached:
    """A TC program (or another prog_type) loaded but attached nowhere, its maps pinned under `pin_dir`: no
    traffic of any interface reaches it, only the packets a test runs through BPF_PROG_TEST_RUN."""

    def __init__(self, obj_path, pin_dir, config=None, prog_type=None):
        from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf
        from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.bpf_object import BpfObject
        from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.config import write_config

        self.obj = BpfObject(obj_path)
        self.obj.select(None, libbpf.PROG_TYPE_SCHED_CLS if prog_type is None else prog_type)
        write_config(self.obj, config or {})
        self.obj.load()
        self.maps = {}
        os.makedirs(pin_dir, exist_ok=True)
        for name in self.obj.maps():
            self.maps[name] = os.path.join(pin_dir, name)
            libbpf.obj_pin(self.obj.map_fd(name), self.maps[name])
        self.fd = self.obj.prog_fd
        self._run = libbpf.test_run

    def run(self, frame):
        """(verdict, frame out)."""
        retval, out, _ns = self._run(self.fd, frame)
        return retval, out

    def close(self):
        self.obj.close()


def differential(prog, rng, count, make_frame, verdict, step):
    """Run `count` frames of make_frame(rng) through prog on its frozen clock (ws_clock), moved on by step(rng)
    before each; the kernel's verdict must be verdict(frame, now) and the frame must come out unchanged.
    Returns (mismatches, {verdict: how many})."""
    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf

    now, mismatches, verdicts = 10 ** 12, [], {}
    clock = libbpf.obj_get(prog.maps["ws_clock"])
    try:
        for i in range(count):
            now += step(rng)
            libbpf.map_update(clock, struct.pack("I", 0), struct.pack("QQ", 0, now))
            frame = make_frame(rng)
            want = verdict(frame, now)
            got, out = prog.run(frame)
            verdicts[want] = verdicts.get(want, 0) + 1
            if got != want or out != frame:
                mismatches.append((i, frame.hex(), got, want))
    finally:
        os.close(clock)
    return mismatches, verdicts
