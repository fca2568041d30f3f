# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""egress_ratelimit (TC egress): the received rate of real traffic between namespaces against the configured
rate, a destination outside the rules untouched, TCP goodput, and the program against a Python model."""

import ipaddress
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

import packets
import pytest
from conftest import BPF
from netlab import netns, run
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _qos

SRC = os.path.join(BPF, "egress_ratelimit.bpf.c")
TC_ACT_UNSPEC, TC_ACT_STOLEN = 0xFFFFFFFF, 4
PAYLOAD = 1400
FRAME = PAYLOAD + 42  # what the program charges: Ethernet + IPv4 + UDP + payload
SO_TIMESTAMPNS = 35

# A UDP sender well over any limit here, bounded in packets and seconds; prints its own send window.
UDP_SENDER = r"""
import json, socket, sys, time
dst, port, seconds, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload, sent, start = b"r" * size, 0, time.time()
while time.time() - start < seconds and sent < 2000000:
    for _i in range(64):
        try:
            s.sendto(payload, (dst, port))
            sent += 1
        except OSError:
            pass
print(json.dumps({"start": start, "end": time.time(), "sent": sent}))
"""

TCP_SENDER = r"""
import json, socket, sys, time
dst, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((dst, port), timeout=5)
s.settimeout(1)
chunk, sent, start = b"t" * 65536, 0, time.time()
while time.time() - start < seconds:
    try:
        sent += s.send(chunk)
    except socket.timeout:
        pass
s.close()
print(json.dumps({"start": start, "end": time.time(), "sent": sent}))
"""


@pytest.fixture
def limited(dut, objects):
    """The limiter on the dut's egress, a second address on the peer (outside every rule)."""
    octets = dut.peer_ip.rsplit(".", 1)[0]
    other = octets + ".3"
    run(["ip", "-n", dut.peer, "addr", "add", other + "/24", "dev", dut.peer_if])
    result = dut.tc_deploy("egress_ratelimit", objects["build"](SRC), direction="egress", priority=5)
    return result["maps"], other


def set_rule(maps, net, rate, burst=None, per=0):
    """One rule, with the burst the role gives by default."""
    value = {"rate": rate, "burst": _qos.burst(burst, "burst", rate), "per": per, "id": 1}
    mapsync.sync(maps["rules_v4"], entries=[{"key": net, "value": value}], exclusive=True)


def sender(ns, script, *args):
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", script, *map(str, args)],
                            stdout=subprocess.PIPE, text=True)


def udp_rate(dut, dst, port, seconds=2.5, warmup=0.5):
    """Frame bits per second arriving at dst:port (in the peer) during the sender's steady window, from the
    kernel's arrival timestamps; and the sender's own offered rate."""
    with netns(dut.peer):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    rx.bind((dst, port))
    rx.settimeout(0.5)
    arrivals, stop = [], threading.Event()

    def receive():
        while not stop.is_set():
            try:
                data, anc, _flags, _addr = rx.recvmsg(2048, 64)
            except socket.timeout:
                continue
            stamp = next((struct.unpack("qq", d[:16]) for lvl, typ, d in anc if typ == SO_TIMESTAMPNS), None)
            arrivals.append((stamp[0] + stamp[1] / 1e9 if stamp else time.time(), len(data)))

    thread = threading.Thread(target=receive)
    thread.start()
    try:
        proc = sender(dut.dut, UDP_SENDER, dst, port, seconds, PAYLOAD)
        out, _err = proc.communicate(timeout=seconds + 30)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
        rx.close()
    window = json.loads(out)
    lo, hi = window["start"] + warmup, window["end"]
    got = sum(size + 42 for t, size in arrivals if lo <= t <= hi)
    offered = window["sent"] * FRAME * 8 / (window["end"] - window["start"])
    return got * 8 / (hi - lo), offered


@pytest.mark.parametrize("mbit", [1, 10, 100])
def test_udp_received_rate_within_10_percent(dut, limited, mbit):
    maps, _other = limited
    rate = mbit * 10 ** 6
    set_rule(maps, dut.peer_ip + "/32", rate)
    received, offered = udp_rate(dut, dut.peer_ip, 7400)
    print("limit %d mbit/s: received %.2f mbit/s, offered %.1f mbit/s" % (mbit, received / 1e6, offered / 1e6))
    assert offered > 3 * rate, "the sender did not get well over the limit (%.1f mbit/s)" % (offered / 1e6)
    assert 0.9 * rate <= received <= 1.1 * rate
    reasons = {k: v["packets"] for k, v in info.reason_counters(maps["ws_reasons"]).items() if v["packets"]}
    assert reasons.get("rate_limited", 0) > 0 and set(reasons) == {"rate_limited"}


def test_destination_outside_every_rule_is_untouched(dut, limited):
    maps, other = limited
    set_rule(maps, dut.peer_ip + "/32", 10 ** 6)
    before = info.reason_counters(maps["ws_reasons"])["rate_limited"]["packets"]
    with netns(dut.peer):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    rx.bind((other, 7401))
    rx.setblocking(False)
    try:
        proc = sender(dut.dut, UDP_SENDER.replace("while time.time() - start < seconds and sent < 2000000",
                                                  "while sent < 2000"), other, 7401, 5, PAYLOAD)
        window = json.loads(proc.communicate(timeout=30)[0])
        assert dut.drain(rx) == window["sent"] == 2048  # 1 mbit/s would have let ~100 of these through
    finally:
        rx.close()
    assert info.reason_counters(maps["ws_reasons"])["rate_limited"]["packets"] == before


@pytest.mark.parametrize("mbit", [10])
def test_tcp_goodput_within_minus_25_plus_10_percent(dut, limited, mbit):
    maps, _other = limited
    rate = mbit * 10 ** 6
    set_rule(maps, dut.peer_ip + "/32", rate)
    with netns(dut.peer):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((dut.peer_ip, 7402))
    server.listen(1)
    server.settimeout(10)
    proc = sender(dut.dut, TCP_SENDER, dut.peer_ip, 7402, 7)  # 6 s measured: a timeout now and then averages out
    stamps = []
    try:
        conn, _addr = server.accept()
        conn.settimeout(2)
        while True:
            try:
                data = conn.recv(1 << 20)
            except socket.timeout:
                break
            if not data:
                break
            stamps.append((time.time(), len(data)))
        conn.close()
        window = json.loads(proc.communicate(timeout=30)[0])
    finally:
        server.close()
        if proc.poll() is None:
            proc.kill()
    lo, hi = window["start"] + 1.0, window["end"]
    goodput = sum(n for t, n in stamps if lo <= t <= hi) * 8 / (hi - lo)
    print("TCP goodput %.2f mbit/s at a %d mbit/s limit" % (goodput / 1e6, mbit))
    assert 0.75 * rate <= goodput <= 1.1 * rate


# ---- the program against a model, through BPF_PROG_TEST_RUN on a frozen clock ----------------------------

RULES_V4 = [("203.0.113.0/24", 8 * 10 ** 6, 4000, 0, 1), ("203.0.113.128/25", 4 * 10 ** 6, 3000, 1, 2),
            ("198.51.100.0/24", 10 ** 6, 1600, 0, 3)]
RULES_V6 = [("2001:db8:1::/48", 2 * 10 ** 6, 5000, 0, 4), ("2001:db8:1:2::/64", 10 ** 6, 2000, 1, 5)]
DEFAULT = (5 * 10 ** 5, 2000, 1)  # rate, burst, per rule: everything else


class Model:
    """What egress_ratelimit decides: longest prefix, then a GCRA bucket (bucket.h) per address or per rule."""

    def __init__(self):
        self.rules = [(ipaddress.ip_network(n), r, b, p, i) for n, r, b, p, i in RULES_V4 + RULES_V6]
        self.tat = {}

    def verdict(self, frame, now):
        pkt = packets.parse(frame)
        if pkt is None:
            return TC_ACT_UNSPEC
        dst = ipaddress.ip_address(pkt["dst"])
        hits = [r for r in self.rules if r[0].version == dst.version and dst in r[0]]
        if hits:
            _net, rate, burst, per, rid = max(hits, key=lambda r: r[0].prefixlen)
        else:
            (rate, burst, per), rid = DEFAULT, 0
        key = (rid, None if per else dst)
        tat = self.tat.get(key, 0)
        start = max(tat, now)
        debt, cost, depth = start - now, len(frame) * 8 * 10 ** 9 // rate, burst * 8 * 10 ** 9 // rate
        if debt and debt + cost > depth:
            return TC_ACT_STOLEN
        self.tat[key] = start + cost
        return TC_ACT_UNSPEC


def random_frame(rng):
    return packets.random_frame(
        rng, ["203.0.113.5", "203.0.113.6", "203.0.113.200", "203.0.113.201", "198.51.100.7", "192.0.2.1",
              "192.0.2.2"], ["2001:db8:1::5", "2001:db8:1::6", "2001:db8:1:2::7", "2001:db8:1:2::8", "2001:db8:9::1"],
        [UDP(sport=1, dport=2), TCP(sport=3, dport=4, flags="A")])


def test_differential_against_a_model(dut, objects):
    """12000 frames (a tenth malformed, truncated or not IP) on a frozen clock the test moves: the kernel's
    verdict of every one equals the model's."""
    prog = packets.Unattached(objects["build"](SRC), os.path.join(dut.pin_root, "erl"),
                              {"default_rate": DEFAULT[0], "default_burst": DEFAULT[1], "default_per": DEFAULT[2]})
    maps = prog.maps
    mapsync.sync(maps["rules_v4"], entries=[{"key": n, "value": {"rate": r, "burst": b, "per": p, "id": i}}
                                            for n, r, b, p, i in RULES_V4])
    mapsync.sync(maps["rules_v6"], entries=[{"key": n, "value": {"rate": r, "burst": b, "per": p, "id": i}}
                                            for n, r, b, p, i in RULES_V6])
    model = Model()
    try:
        mismatches, verdicts = packets.differential(
            prog, random.Random(13), 12000, random_frame, model.verdict,
            lambda rng: rng.choice([0, 0, 1000, 50000, 400000, 3000000]))
    finally:
        prog.close()
    assert mismatches == [], mismatches[:5]
    assert verdicts[TC_ACT_STOLEN] > 1000 and verdicts[TC_ACT_UNSPEC] > 3000, verdicts


def test_two_cpus_charging_one_bucket_never_overrun_it(dut, objects):
    """Both CPUs run the program 100000 times each on one destination, at once, on a frozen clock: exactly the
    packets the bucket holds pass (a plain read-modify-write would let through more)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    prog = packets.Unattached(objects["build"](SRC), os.path.join(dut.pin_root, "erl_cpus"))
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="203.0.113.9")
                  / UDP(sport=1, dport=2) / (b"c" * 58))  # 100 bytes: at 8 Gbit/s one costs 100 ns
    rule = {"rate": 8 * 10 ** 9, "burst": 5 * 10 ** 6, "per": 0, "id": 1}  # 5 ms deep: 50000 such packets
    mapsync.sync(prog.maps["rules_v4"], entries=[{"key": "203.0.113.0/24", "value": rule}])
    mapsync.sync(prog.maps["ws_clock"], entries={0: {"offset_ns": 0, "frozen_ns": 10 ** 12}})
    cpus, errors = sorted(os.sched_getaffinity(0))[:2], []

    def hammer(cpu):
        try:
            os.sched_setaffinity(0, {cpu})  # this thread only
            libbpf.test_run(prog.fd, frame, 100000)
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(cpu,)) for cpu in cpus]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        passed = info.action_counters(prog.maps["ws_stats"])
        dropped = info.reason_counters(prog.maps["ws_reasons"])["rate_limited"]["packets"]
    finally:
        prog.close()
    assert errors == []
    assert passed["pass"]["packets"] == 50000 and dropped == 150000, (passed, dropped)
