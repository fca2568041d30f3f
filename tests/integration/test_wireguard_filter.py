# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wireguard_filter: message shapes, the handshake limit on a moved clock, a differential test, real datagrams."""

import os
import random
import socket

import pytest
from conftest import BPF
from netlab import netns
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf

XDP_ABORTED, XDP_DROP, XDP_PASS = 0, 1, 2
WG = os.path.join(BPF, "wireguard_filter.bpf.c")
SECOND = 10 ** 9
PORT = 51820
ALLOWED = "192.0.2.44"


def message(kind, size, reserved=b"\0\0\0"):
    return bytes([kind]) + reserved + b"\xab" * (size - 4)


class Filter:
    def __init__(self, dut, obj, **config):
        self.maps = dut.deploy("wg", obj, config={"ports": [PORT], **config})["maps"]
        mapsync.sync(self.maps["allow_v4"], entries=["%s/32" % ALLOWED])
        self.fd = libbpf.obj_get(os.path.join(dut.pin_root, "wg", "prog"))
        self.now = 1000 * SECOND
        self.tick(0)

    def tick(self, ns):
        self.now += ns
        mapsync.sync(self.maps["ws_clock"], entries={0: {"offset_ns": 0, "frozen_ns": self.now}})

    def send(self, payload, src="203.0.113.9", dport=PORT):
        ip = IP(src=src, dst="198.18.0.1") if ":" not in src else IPv6(src=src, dst="2001:db8::1")
        frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip
                      / UDP(sport=40000, dport=dport) / payload)
        return libbpf.test_run(self.fd, frame)[0]

    def reasons(self):
        return {k: v["packets"] for k, v in info.reason_counters(self.maps["ws_reasons"]).items() if v["packets"]}


@pytest.fixture
def wg(dut, objects):
    made = []

    def make(**config):
        made.append(Filter(dut, objects["build"](WG), **config))
        return made[-1]
    yield make
    for f in made:
        os.close(f.fd)


SHAPES = [
    ("initiation", message(1, 148), XDP_PASS),
    ("response", message(2, 92), XDP_PASS),
    ("cookie reply", message(3, 64), XDP_PASS),
    ("transport, smallest", message(4, 32), XDP_PASS),
    ("transport, 1424 bytes", message(4, 1424), XDP_PASS),
    ("unknown type 5", message(5, 148), XDP_DROP),
    ("type 0", message(0, 32), XDP_DROP),
    ("initiation, reserved byte set", message(1, 148, b"\0\1\0"), XDP_DROP),
    ("initiation, one byte short", message(1, 147), XDP_DROP),
    ("response, one byte long", message(2, 93), XDP_DROP),
    ("cookie reply, 80 bytes", message(3, 80), XDP_DROP),
    ("transport, 31 bytes", message(4, 31), XDP_DROP),
    ("transport, not a multiple of 16", message(4, 40), XDP_DROP),
    ("three bytes", b"\x01\0\0", XDP_DROP),
    ("empty", b"", XDP_DROP),
]


@pytest.mark.parametrize("src", ["203.0.113.9", "2001:db8:bad::9"])
@pytest.mark.parametrize("description,payload,verdict", SHAPES, ids=[s[0] for s in SHAPES])
def test_message_shapes(wg, src, description, payload, verdict):
    f = wg()
    assert f.send(payload, src) == verdict, description
    assert f.reasons() == ({} if verdict == XDP_PASS else {"wg_invalid": 1})


def test_other_ports_are_not_judged(wg):
    f = wg()
    assert f.send(b"garbage", dport=53) == XDP_PASS


def test_handshake_limit_per_source_and_window(wg):
    f = wg(handshake_limit=3, window_ms=1000, ban_s=0)
    init = message(1, 148)
    assert [f.send(init) for _i in range(5)] == [XDP_PASS] * 3 + [XDP_DROP] * 2
    assert f.send(message(4, 64)) == XDP_PASS  # transport data is never limited
    assert f.send(init, src="203.0.113.10") == XDP_PASS  # another source has its own budget
    assert [f.send(init, src=ALLOWED) for _i in range(10)] == [XDP_PASS] * 10  # allow list
    f.tick(SECOND)
    assert f.send(init) == XDP_PASS  # a new window
    assert f.reasons() == {"wg_handshake_limit": 2}


def test_ban_holds_initiations_back(wg):
    f = wg(handshake_limit=2, window_ms=1000, ban_s=30)
    init = message(1, 148)
    assert [f.send(init) for _i in range(3)] == [XDP_PASS, XDP_PASS, XDP_DROP]
    f.tick(10 * SECOND)
    assert f.send(init) == XDP_DROP
    assert f.send(message(4, 48)) == XDP_PASS
    f.tick(20 * SECOND)
    assert f.send(init) == XDP_PASS


def model(events, limit, window):
    state, out = {}, []
    for now, src, kind, size, reserved in events:
        ok = reserved == b"\0\0\0" and size >= 4 and (
            (kind == 1 and size == 148) or (kind == 2 and size == 92) or (kind == 3 and size == 64)
            or (kind == 4 and size >= 32 and size % 16 == 0))
        if not ok:
            out.append((XDP_DROP, "wg_invalid"))
            continue
        if kind != 1 or src == ALLOWED:
            out.append((XDP_PASS, None))
            continue
        st = state.get(src)
        if st is None:
            state[src] = {"start": now, "count": 1}
            out.append((XDP_PASS, None))
            continue
        if now - st["start"] >= window:
            st["start"], st["count"] = now, 0
        st["count"] += 1
        out.append((XDP_DROP, "wg_handshake_limit") if st["count"] > limit else (XDP_PASS, None))
    return out


def test_differential_10000_packets(wg):
    limit, window = 3, SECOND
    f = wg(handshake_limit=limit, window_ms=1000, ban_s=0)
    rng = random.Random(11)
    sources = ["203.0.113.%d" % i for i in range(1, 5)] + ["2001:db8:bad::1", ALLOWED]
    events, steps, now = [], [], f.now
    for _i in range(10000):
        step = rng.choice([0, 0, 0, SECOND // 10, SECOND // 2, 2 * SECOND])
        if rng.random() < 0.7:  # well-formed shapes, initiations most of all
            kind, size = rng.choice([(1, 148)] * 6 + [(2, 92), (3, 64), (4, 32), (4, 48), (4, 1424)])
        else:
            kind = rng.choice([1, 2, 3, 4, 0, 5, 255])
            size = rng.choice([148, 92, 64, 32, 33, 147, 149, 4, 100, rng.randrange(4, 300)])
        reserved = b"\0\0\0" if rng.random() < 0.9 else bytes(rng.randrange(256) for _i in range(3))
        now += step
        steps.append(step)
        events.append((now, rng.choice(sources), kind, size, reserved))
    expected = model(events, limit, window)
    mismatches = []
    for i, (step, (_now, src, kind, size, reserved), want) in enumerate(zip(steps, events, expected)):
        if step:
            f.tick(step)
        got = f.send(bytes([kind]) + reserved + b"\xcd" * (size - 4), src)
        assert got != XDP_ABORTED
        if got != want[0]:
            mismatches.append((i, src, kind, size, reserved, got, want))
    assert mismatches == [], "%d mismatches, first %s" % (len(mismatches), mismatches[:3])
    wanted = {}
    for _verdict, reason in expected:
        if reason:
            wanted[reason] = wanted.get(reason, 0) + 1
    assert f.reasons() == wanted and set(wanted) == {"wg_invalid", "wg_handshake_limit"}


def test_end_to_end_on_veth(dut, wg):
    f = wg()
    mapsync.sync(f.maps["ws_clock"], entries={0: {"offset_ns": 0, "frozen_ns": 0}})  # the real clock
    rx = dut.receiver(PORT)
    try:
        with netns(dut.peer):
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for payload in (message(1, 148), message(4, 64), b"hello", message(2, 93)):
                tx.sendto(payload, (dut.dut_ip, PORT))
        finally:
            tx.close()
        rx.setblocking(True)
        rx.settimeout(0.5)
        got = []
        for _attempt in range(4):
            try:
                got.append(rx.recv(2048)[:1])
            except socket.timeout:
                break
    finally:
        rx.close()
    assert got == [b"\x01", b"\x04"]  # the two well-formed messages, nothing else
