# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conn_limiter (TC ingress): real connections from several sources in one bounded second against the limit,
established connections untouched, and the program against a Python model on a frozen clock."""

import ipaddress
import os
import random
import select
import socket
import threading
import time

import packets
import pytest
from conftest import BPF
from netlab import netns, run
from scapy.layers.inet import TCP, UDP

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync

SRC = os.path.join(BPF, "conn_limiter.bpf.c")
TC_ACT_UNSPEC, TC_ACT_SHOT = 0xFFFFFFFF, 2
LIMIT, BURST = 10, 5
SECOND = 10 ** 9


@pytest.fixture
def limited(dut, objects):
    """The limiter on the dut's ingress; the peer has three sources: a (limited), b (limited), c (allowed)."""
    base = dut.peer_ip.rsplit(".", 1)[0]
    sources = {"a": dut.peer_ip, "b": base + ".3", "c": base + ".4"}
    for name in ("b", "c"):
        run(["ip", "-n", dut.peer, "addr", "add", sources[name] + "/24", "dev", dut.peer_if])
    result = dut.tc_deploy("conn_limiter", objects["build"](SRC), direction="ingress", priority=8,
                           config={"interval_ns": SECOND // LIMIT, "burst": BURST, "ports": [7700, 7701]})
    mapsync.sync(result["maps"]["allow_v4"], entries=[sources["c"] + "/32"])
    return result["maps"], sources


@pytest.fixture
def server(dut):
    """A TCP echo server in the dut on 7700, counting the connections it accepted per source."""
    with netns(dut.dut):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((dut.dut_ip, 7700))
    listener.listen(1024)
    listener.settimeout(0.2)
    accepted, stop, conns = {}, threading.Event(), []

    def serve():
        while not stop.is_set():
            try:
                conn, addr = listener.accept()
            except socket.timeout:
                continue
            accepted[addr[0]] = accepted.get(addr[0], 0) + 1
            conns.append(conn)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield accepted, conns
    finally:
        stop.set()
        thread.join()
        for conn in conns:
            conn.close()
        listener.close()


def connect_storm(dut, plan, seconds=1.0, hold=0.5):
    """Open connections from the peer, plan = {source: count}, spread evenly over `seconds` (never later:
    one bounded second); each socket is judged and closed `hold` s after its SYN, before a retransmission
    (the first comes after 1 s). Returns {source: connections established}."""
    schedule = sorted((i * seconds / n, src) for src, n in plan.items() for i in range(n))
    pending, done = [], {src: 0 for src in plan}
    start = time.monotonic()

    def settle(final=False):
        now = time.monotonic()
        for item in list(pending):
            born, src, sock = item
            if final or now - born >= hold:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                _r, writable, _x = select.select([], [sock], [], 0)
                if writable and err == 0:
                    done[src] += 1
                sock.close()
                pending.remove(item)

    for at, src in schedule:
        while time.monotonic() - start < at:
            settle()
            time.sleep(0.002)
        if time.monotonic() - start >= seconds:
            break  # bounded: nothing after the second
        with netns(dut.peer):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((src, 0))
        sock.connect_ex((dut.dut_ip, 7700))
        pending.append((time.monotonic(), src, sock))
    while pending:
        settle()
        time.sleep(0.01)
    return done


def reasons(maps):
    return {k: v["packets"] for k, v in info.reason_counters(maps["ws_reasons"]).items() if v["packets"]}


def test_new_connections_capped_per_source(dut, limited, server):
    maps, src = limited
    accepted, conns = server
    with netns(dut.peer):
        old = socket.create_connection((dut.dut_ip, 7700), timeout=2, source_address=(src["a"], 0))
    try:
        time.sleep(1.2)  # the established connection's SYN is paid off: a starts with a full bucket
        got = connect_storm(dut, {src["a"]: 5 * LIMIT, src["b"]: 6, src["c"]: 5 * LIMIT})
        # established connections keep flowing: the earlier one still carries data both ways
        old.settimeout(2)
        for i in range(20):
            old.sendall(b"ping%02d" % i)
        time.sleep(0.2)
        server_side = conns[0]
        server_side.settimeout(2)
        received = b""
        while len(received) < 120:
            received += server_side.recv(4096)
        server_side.sendall(b"pong")
        assert old.recv(16) == b"pong"
    finally:
        old.close()
    print("accepted per source in one second:", got)
    assert abs(got[src["a"]] - (LIMIT + BURST)) <= 1, got  # limit + burst, +-1
    assert got[src["b"]] == 6, got  # another source is not affected
    assert got[src["c"]] == 5 * LIMIT, got  # allow-listed: never limited
    assert received == b"".join(b"ping%02d" % i for i in range(20))
    for _i in range(50):  # the server's side agrees: what a client saw established was accepted
        if accepted.get(src["a"]) == got[src["a"]] + 1:
            break
        time.sleep(0.05)
    assert accepted.get(src["a"]) == got[src["a"]] + 1 and accepted.get(src["b"]) == 6, accepted
    dropped = reasons(maps).get("conn_limit", 0)
    assert dropped == 5 * LIMIT - got[src["a"]], (dropped, got)  # each refused SYN counted once


def test_new_udp_flows_capped_established_flow_untouched(dut, limited):
    maps, src = limited
    with netns(dut.dut):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((dut.dut_ip, 7701))
    rx.setblocking(False)
    senders = []
    try:
        with netns(dut.peer):
            steady = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            steady.bind((src["a"], 0))
            for _i in range(5 * LIMIT):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((src["a"], 0))
                senders.append(s)
        steady.sendto(b"s", (dut.dut_ip, 7701))  # the established flow, before the storm
        time.sleep(1.2)
        start = time.monotonic()
        for i, s in enumerate(senders):  # 5 x the limit of new flows in one bounded second
            while time.monotonic() - start < i / len(senders):
                time.sleep(0.002)
            s.sendto(b"n", (dut.dut_ip, 7701))
            steady.sendto(b"s", (dut.dut_ip, 7701))
        time.sleep(0.3)
        flows, steady_got = set(), 0
        while True:
            try:
                data, addr = rx.recvfrom(16)
            except BlockingIOError:
                break
            if data == b"s":
                steady_got += 1
            else:
                flows.add(addr[1])
    finally:
        rx.close()
        for s in senders + [steady]:
            s.close()
    assert abs(len(flows) - (LIMIT + BURST)) <= 1, len(flows)
    assert steady_got == 1 + 5 * LIMIT  # every packet of the established flow
    assert reasons(maps)["conn_limit"] == 5 * LIMIT - len(flows)


# ---- the program against a model, on a frozen clock ----------------------------------------------------

ALLOWED = ["192.0.2.50/32", "2001:db8:a::/48"]
PORTS = [80, 7700]


class Model:
    """conn_limiter's decision: new connections (SYN; an unseen or idle UDP flow) per source through a GCRA
    bucket, the allow list exempt, ports filtered."""

    def __init__(self, interval, burst, idle):
        self.interval, self.depth, self.idle = interval, (burst + 1) * interval, idle
        self.tat, self.flows = {}, {}
        self.allowed = [ipaddress.ip_network(a) for a in ALLOWED]

    def admitted(self, src, now):
        address = ipaddress.ip_address(src)
        if any(address.version == n.version and address in n for n in self.allowed):
            return True
        start = max(self.tat.get(src, 0), now)
        debt = start - now
        if debt and debt + self.interval > self.depth:
            return False
        self.tat[src] = start + self.interval
        return True

    def verdict(self, frame, now):
        pkt = packets.parse(frame)
        if pkt is None or not pkt["l4_present"] or pkt["dport"] not in PORTS:
            return TC_ACT_UNSPEC
        if pkt["proto"] == 6:
            if pkt["flags"] & 0x12 != 0x02:
                return TC_ACT_UNSPEC
            return TC_ACT_UNSPEC if self.admitted(pkt["src"], now) else TC_ACT_SHOT
        if pkt["proto"] != 17:
            return TC_ACT_UNSPEC
        flow = (pkt["src"], pkt["dst"], pkt["sport"], pkt["dport"])
        seen = self.flows.get(flow)
        if seen is not None and now - seen < self.idle:
            self.flows[flow] = now
            return TC_ACT_UNSPEC
        if not self.admitted(pkt["src"], now):
            return TC_ACT_SHOT
        self.flows[flow] = now
        return TC_ACT_UNSPEC


def test_differential_against_a_model(dut, objects):
    """12000 frames from a handful of sources (a tenth malformed, truncated or not IP): every verdict the
    model's."""
    interval, burst, idle = SECOND // 5, 2, 2 * SECOND
    prog = packets.Unattached(objects["build"](SRC), os.path.join(dut.pin_root, "cl_diff"),
                              {"interval_ns": interval, "burst": burst, "udp_idle_ns": idle, "ports": PORTS})
    mapsync.sync(prog.maps["allow_v4"], entries=[ALLOWED[0]])
    mapsync.sync(prog.maps["allow_v6"], entries=[ALLOWED[1]])
    rng, model = random.Random(17), Model(interval, burst, idle)
    l4s = [TCP(sport=rng.randrange(1024, 1030), dport=d, flags=f) for d in (80, 7700, 22)
           for f in ("S", "S", "S", "SA", "A", "PA", "R", "SE")]
    l4s += [UDP(sport=s, dport=d) for s in (5000, 5001, 5002, 5003) for d in (80, 7700, 53)]

    def make(rng):
        return packets.random_frame(rng, ["198.51.100.1"], ["2001:db8:1::1"], l4s,
                                    sources=("192.0.2.1", "192.0.2.2", "192.0.2.50"),
                                    sources6=("2001:db8:5::1", "2001:db8:a::7"))

    def step(rng):  # mostly close together, now and then past the UDP idle time
        return rng.choice([0, 0, 0, 0, 1000, 10 ** 6, 2 * 10 ** 6, 10 * 10 ** 6]) + \
            (3 * SECOND if rng.random() < 0.005 else 0)

    try:
        mismatches, verdicts = packets.differential(prog, rng, 12000, make, model.verdict, step)
    finally:
        prog.close()
    assert mismatches == [], mismatches[:5]
    assert verdicts[TC_ACT_SHOT] > 800 and verdicts[TC_ACT_UNSPEC] > 5000, verdicts
