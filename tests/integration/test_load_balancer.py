# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""load_balancer: real packets through a balancer namespace to three backend namespaces (direct server return).

One lab for the whole file: a switch namespace with a bridge, the balancer, a client and three backends on it,
each backend holding the VIPs on lo (arp_ignore=1, arp_announce=2). The client reaches the VIPs through static
neighbour entries pointing at the balancer; a backend answers the client directly, from the VIP. The lab facts
the role's preflight names are applied here: TX checksum offload off on the client's veth, and an XDP_PASS
program on the bridge-side end of the balancer's veth (native XDP_TX on veth needs it).
"""

import collections
import os
import random
import socket
import struct
import threading
import time

import pytest
from conftest import BPF, TEST_BPF, xdp_hook
from netlab import netns, run, tx_checksum_off

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import checkpoint, hooks, info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf, maps, neigh
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _maglev

LB = os.path.join(BPF, "load_balancer.bpf.c")
PASS = os.path.join(os.path.dirname(os.path.dirname(TEST_BPF)), "..", "bench", "bpf", "bare_pass.bpf.c")
UDP_PORT, TCP_PORT = 5353, 8080


class Lab:
    def __init__(self, objects):
        sfx = "%05x" % random.randrange(1 << 20)
        self.sfx = sfx
        octet = random.randrange(1, 255)
        self.net = "198.19.%d." % octet
        self.net6 = "2001:db8:%x::" % octet
        self.vip, self.vip6 = self.net + "100", self.net6 + "100"
        self.ns = {k: "wslb%s%s" % (k, sfx) for k in ("sw", "lb", "cl", "b1", "b2", "b3")}
        self.ifname = "lbe%s" % sfx
        self.backends = {"b1": self.net + "11", "b2": self.net + "12", "b3": self.net + "13"}
        self.backends6 = {k: self.net6 + v.rsplit(".", 1)[1] for k, v in self.backends.items()}
        self.state_dir = "/tmp/wslbstate%s" % sfx
        self.objects = objects
        self.threads = []
        self.stop = threading.Event()
        self.socks = []

    def up(self):
        sw = self.ns["sw"]
        for ns in self.ns.values():
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", sw, "link", "set", "br0", "up"])
        addrs = {"lb": ("1", "1"), "cl": ("2", "2"), "b1": ("11", "11"), "b2": ("12", "12"), "b3": ("13", "13")}
        for key, (last, last6) in addrs.items():
            dev = self.ifname if key == "lb" else "eth0"
            run(["ip", "-n", sw, "link", "add", "s%s%s" % (key, self.sfx), "type", "veth", "peer", "name", dev,
                 "netns", self.ns[key]])
            run(["ip", "-n", sw, "link", "set", "s%s%s" % (key, self.sfx), "master", "br0", "up"])
            run(["ip", "-n", self.ns[key], "addr", "add", self.net + last + "/24", "dev", dev])
            run(["ip", "-n", self.ns[key], "addr", "add", self.net6 + last6 + "/64", "dev", dev, "nodad"])
            run(["ip", "-n", self.ns[key], "link", "set", dev, "up"])
        for key in ("b1", "b2", "b3"):  # the backend-side settings (roles/load_balancer/tasks/backend.yml)
            ns = self.ns[key]
            for vip in (self.vip + "/32", self.vip6 + "/128"):
                run(["ip", "-n", ns, "addr", "add", vip, "dev", "lo"])
            for opt, val in (("arp_ignore", "1"), ("arp_announce", "2"), ("rp_filter", "0")):
                for dev in ("all", "eth0"):
                    run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.%s.%s=%s" % (dev, opt, val)])
        cl = self.ns["cl"]
        with netns(cl):
            tx_checksum_off("eth0")
        run(["ip", "netns", "exec", cl, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"])
        lb_mac = run(["ip", "-n", self.ns["lb"], "-br", "link", "show", self.ifname]).stdout.split()[2]
        for vip in (self.vip, self.vip6):
            run(["ip", "-n", cl, "neigh", "replace", vip, "lladdr", lb_mac, "dev", "eth0", "nud", "permanent"])
        # the veth pitfall: frames the balancer sends back out with XDP_TX arrive only when the peer end runs XDP
        run(["ip", "-n", sw, "link", "set", "dev", "slb%s" % self.sfx, "xdpdrv", "obj",
             self.objects["build"](os.path.abspath(PASS)), "sec", "xdp"])
        with netns(self.ns["lb"]):  # the balancer learns its backends' MACs (the role: neighbour_info)
            self.macs = neigh.resolve(self.ifname, list(self.backends.values()) + list(self.backends6.values()))
        self.names = {v: k for k, v in list(self.backends.items()) + list(self.backends6.items())}
        self.macs_by_name = {self.names[a]: m for a, m in self.macs.items()}
        return self

    def deploy(self, **config):
        with netns(self.ns["lb"]):
            req = xdp_hook(self.ifname, "lb", root_object=self.objects["root"], state_dir=self.state_dir,
                           object_path=self.objects["build"](LB), config=config)
            self.maps = hooks.deploy(req)["maps"]

    def services(self, weights=None, states=None, v6=True):
        weights, states = weights or {}, states or {}

        def backends(addrs):
            return [{"address": a, "weight": weights.get(k, 1), "state": states.get(k, "active")}
                    for k, a in addrs.items() if weights.get(k, 1) is not None]
        svc = [{"vip": self.vip, "proto": "udp", "port": UDP_PORT, "backends": backends(self.backends)},
               {"vip": self.vip, "proto": "tcp", "port": TCP_PORT, "backends": backends(self.backends)},
               {"vip": self.vip, "proto": "icmp", "backends": backends(self.backends)}]
        if v6:
            svc.append({"vip": self.vip6, "proto": "udp", "port": UDP_PORT, "backends": backends(self.backends6)})
        return svc

    def write(self, services, size=_maglev.DEFAULT_SIZE):
        """What the role writes, in its order: backends first, then tables, then services, then stale backends."""
        checked = _maglev.check(services, size=size, macs=self.macs)
        ent = _maglev.entries(checked)
        with netns(self.ns["lb"]):
            mapsync.sync(self.maps["lb_backends"], entries=ent["backends"])
            start = time.monotonic()
            for t in ent["tables"]:
                mapsync.sync_packed(self.maps["lb_maglev"], t["table"], t["index"] * _maglev.MAX_SIZE,
                                    t["digest"], count=_maglev.MAX_SIZE)
            self.table_seconds = time.monotonic() - start
            mapsync.sync(self.maps["lb_services"], entries=ent["services"], exclusive=True)
            mapsync.sync(self.maps["lb_backends"], entries=ent["backends"], exclusive=True)
            used = len(ent["tables"])
            mapsync.sync_packed(self.maps["lb_maglev"], "", used * _maglev.MAX_SIZE,
                                count=(_maglev.MAX_SERVICES - used) * _maglev.MAX_SIZE)
        return ent

    def clear_conns(self):
        with netns(self.ns["lb"]):
            mapsync.sync(self.maps["lb_conns"], entries=[], exclusive=True)

    def serve_udp(self, v6=False):
        """A UDP socket on the VIP in each backend; returns {backend: socket}."""
        out = {}
        for key in ("b1", "b2", "b3"):
            with netns(self.ns[key]):
                s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind((self.vip6 if v6 else self.vip, UDP_PORT))
            s.setblocking(False)
            out[key] = s
            self.socks.append(s)
        return out

    def flows(self, servers, ports, v6=False):
        """Send one datagram from each client source port; {port: backend that received it}."""
        with netns(self.ns["cl"]):
            family = socket.AF_INET6 if v6 else socket.AF_INET
            for p in ports:
                with socket.socket(family, socket.SOCK_DGRAM) as s:
                    s.bind((self.net6 + "2" if v6 else self.net + "2", p))
                    s.sendto(b"f%d" % p, (self.vip6 if v6 else self.vip, UDP_PORT))
        got, deadline, idle = {}, time.monotonic() + 10, time.monotonic()
        while len(got) < len(ports) and time.monotonic() < deadline and time.monotonic() - idle < 1.0:
            for key, s in servers.items():
                while True:
                    try:
                        _data, src = s.recvfrom(64)
                    except BlockingIOError:
                        break
                    got[src[1]] = key
                    idle = time.monotonic()
            time.sleep(0.005)
        return got

    def stats(self):
        with netns(self.ns["lb"]):
            ent = mapsync.sync(self.maps["lb_stats"], entries=[], return_entries=True)["entries"]
            be = mapsync.sync(self.maps["lb_backends"], entries=[], return_entries=True)["entries"]
        ids = {e["key"]: self.names.get(str(_maglev.unmap(e["value"]["addr"]))) for e in be if e["value"]["flags"]}
        out = collections.Counter()
        for e in ent:
            if e["key"] in ids:
                out[ids[e["key"]]] += e["value"]["packets"]
        return out

    def close(self):
        self.stop.set()
        for s in self.socks:
            s.close()
        for ns in self.ns.values():
            run(["ip", "netns", "del", ns], check=False)
        run(["rm", "-rf", "/sys/fs/bpf/wirespeed/%s" % self.ifname, self.state_dir], check=False)


@pytest.fixture(scope="module")
def lab(objects):
    lab = Lab(objects)
    try:
        lab.up()
        lab.deploy()
        lab.write(lab.services(weights={"b1": 1, "b2": 1, "b3": 2}))
        yield lab
    finally:
        lab.close()


def test_backends_resolved_from_the_neighbour_table(lab):
    assert all(lab.macs.values()), lab.macs
    assert len(set(lab.macs_by_name.values())) == 3


def test_spread_removal_rebuild_and_draining(lab):
    servers = lab.serve_udp()
    ports = list(range(20000, 22000))
    first = lab.flows(servers, ports)
    assert len(first) == len(ports), "%d of %d datagrams reached a backend" % (len(first), len(ports))
    share = collections.Counter(first.values())
    for key, weight in (("b1", 1), ("b2", 1), ("b3", 2)):
        expected = len(ports) * weight / 4.0
        assert abs(share[key] - expected) <= 0.15 * expected, (key, share)

    # b2 goes: its flows (and only those) move; the flows of b1 and b3 stay where they were
    lab.write(lab.services(weights={"b1": 1, "b2": None, "b3": 2}))
    second = lab.flows(servers, ports)
    moved = collections.Counter((first[p], second[p]) for p in ports if first[p] != second[p])
    assert set(moved) <= {("b2", "b1"), ("b2", "b3")}, moved
    assert sum(moved.values()) == share["b2"], moved
    assert abs(sum(moved.values()) / len(ports) - 0.25) <= 0.25 * 0.15, moved
    print("removing b2 moved %d of %d flows: %s" % (sum(moved.values()), len(ports), dict(moved)))

    # the table again without the connection table: the Maglev table alone moves b2's slots back, others stay
    lab.write(lab.services(weights={"b1": 1, "b2": 1, "b3": 2}))
    lab.clear_conns()
    third = lab.flows(servers, ports)
    back = collections.Counter((second[p], third[p]) for p in ports if second[p] != third[p])
    assert set(back) <= {("b1", "b2"), ("b3", "b2")}, back
    assert third == first  # the same table as the first: byte-identical, the same backend for every flow

    # a rebuild that does not touch b1 (b3's weight changes): b1's flows stay on b1
    lab.write(lab.services(weights={"b1": 1, "b2": 1, "b3": 3}))
    fourth = lab.flows(servers, ports)
    assert all(fourth[p] == "b1" for p in ports if third[p] == "b1")
    assert fourth == third  # and with the connection table, nobody's flow moves

    # b3 drains: its established flows stay, new flows never reach it
    lab.write(lab.services(weights={"b1": 1, "b2": 1, "b3": 2}, states={"b3": "draining"}))
    kept = lab.flows(servers, [p for p in ports if third[p] == "b3"][:200])
    assert set(kept.values()) == {"b3"}
    fresh = lab.flows(servers, list(range(30000, 30600)))
    assert len(fresh) == 600 and "b3" not in fresh.values(), collections.Counter(fresh.values())
    lab.write(lab.services(weights={"b1": 1, "b2": 1, "b3": 2}))


def test_ipv6_flows_spread_over_the_backends(lab):
    servers = lab.serve_udp(v6=True)
    got = lab.flows(servers, list(range(40000, 40300)), v6=True)
    assert len(got) == 300
    assert set(got.values()) == {"b1", "b2", "b3"}


def _tcp_server(lab, key, ready):
    with netns(lab.ns[key]):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((lab.vip, TCP_PORT))
    srv.listen(16)
    srv.settimeout(0.2)
    lab.socks.append(srv)
    ready.set()
    while not lab.stop.is_set():
        try:
            conn, _peer = srv.accept()
        except (socket.timeout, OSError):
            continue
        with conn:
            conn.settimeout(5)
            data = conn.recv(64)
            conn.sendall(key.encode() + b":" + data)


def test_tcp_connections_complete_with_replies_from_the_vip(lab):
    for key in ("b1", "b2", "b3"):
        ready = threading.Event()
        t = threading.Thread(target=_tcp_server, args=(lab, key, ready), daemon=True)
        t.start()
        ready.wait(5)
    answered = collections.Counter()
    for i in range(12):
        with netns(lab.ns["cl"]):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with c:
            c.settimeout(5)
            c.connect((lab.vip, TCP_PORT))  # the handshake completes only when the SYN-ACK comes from the VIP
            assert c.getpeername() == (lab.vip, TCP_PORT)
            c.sendall(b"hello %d" % i)
            reply = c.recv(64)
        who, _sep, echoed = reply.partition(b":")
        assert echoed == b"hello %d" % i
        answered[who.decode()] += 1
    assert len(answered) >= 2, answered


def _echo_requests(socks, ident):
    """{backend: echo requests of identifier `ident` its raw ICMP socket received} (each backend's own count: a
    late packet of an earlier test through the balancer cannot mix in, as it could in the balancer's counters)."""
    seen = collections.Counter()
    for key, sock in socks.items():
        while True:
            try:
                packet = sock.recv(2048)
            except BlockingIOError:
                break
            icmp = packet[(packet[0] & 0x0F) * 4:]
            if icmp[0] == 8 and struct.unpack("!H", icmp[4:6])[0] == ident:
                seen[key] += 1
    return dict(seen)


def test_icmp_echo_same_backend_for_same_identifier(lab):
    picked = {}
    socks = {}
    for key in ("b1", "b2", "b3"):  # a raw ICMP socket gets a copy of each request before the kernel answers it
        with netns(lab.ns[key]):
            socks[key] = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        socks[key].setblocking(False)
    try:
        for ident in (101, 202, 303, 404):
            with netns(lab.ns["cl"]):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            with s:
                s.bind(("", ident))  # a ping socket's identifier is its port
                s.settimeout(2)
                replies = 0
                for seq in range(3):
                    s.sendto(bytes([8, 0, 0, 0, 0, 0, 0, seq]) + b"wirespeed", (lab.vip, 0))
                    data, src = s.recvfrom(128)
                    assert src[0] == lab.vip and data[0] == 0  # an echo reply, from the VIP
                    replies += 1
            seen = _echo_requests(socks, ident)
            assert replies == 3 and len(seen) == 1 and list(seen.values()) == [3], seen
            picked[ident] = next(iter(seen))
    finally:
        for sock in socks.values():
            sock.close()
    print("ICMP identifiers to backends: %s" % picked)


def test_counters_and_table_hand_off(lab):
    per_backend = lab.stats()
    assert set(per_backend) >= {"b1", "b2", "b3"} and all(per_backend[k] > 0 for k in ("b1", "b2", "b3"))
    with netns(lab.ns["lb"]):
        data = info.gather([lab.ifname], "/sys/fs/bpf", lab.state_dir)
    prog = data[lab.ifname]["programs"]["lb"]
    assert prog["counters"]["tx"]["packets"] >= sum(per_backend.values())
    # datapath_info's per-backend rows (the status table's) say the same as the maps
    shown = collections.Counter()
    for b in prog["backends"]:
        shown[lab.names[b["backend"]]] += b["packets"]
    assert shown == per_backend and {b["state"] for b in prog["backends"]} == {"active"}
    print("the four 65537-slot tables through mapsync.sync_packed: %.2f s" % lab.table_seconds)


def test_unknown_services_and_fragments_go_down_the_chain(lab):
    with netns(lab.ns["lb"]):
        fd = libbpf.obj_get(os.path.join("/sys/fs/bpf/wirespeed", lab.ifname, "lb", "prog"))
    try:
        from scapy.layers.inet import IP, UDP
        from scapy.layers.l2 import Ether
        eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        other_port = bytes(eth / IP(src=lab.net + "2", dst=lab.vip) / UDP(sport=1, dport=9) / b"x")
        fragment = bytes(eth / IP(src=lab.net + "2", dst=lab.vip, flags="MF") / UDP(sport=1, dport=UDP_PORT))
        hit = bytes(eth / IP(src=lab.net + "2", dst=lab.vip) / UDP(sport=1, dport=UDP_PORT) / b"x")
        assert libbpf.test_run(fd, other_port)[0] == 2  # XDP_PASS
        assert libbpf.test_run(fd, fragment)[0] == 2
        verdict, out = libbpf.test_run(fd, hit)[:2]
        assert verdict == 3  # XDP_TX
        assert out[0:6] in [bytes.fromhex(m.replace(":", "")) for m in lab.macs.values()]
        assert out[6:12] == bytes.fromhex("020000000002") and out[30:34] == socket.inet_aton(lab.vip)
        # ICMP: echo requests are balanced (v4 and v6), a reply or a truncated echo header is not
        from scapy.layers.inet import ICMP
        from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
        v4 = eth / IP(src=lab.net + "2", dst=lab.vip)
        assert libbpf.test_run(fd, bytes(v4 / ICMP(type=8, id=7) / b"x"))[0] == 3
        assert libbpf.test_run(fd, bytes(v4 / ICMP(type=0, id=7) / b"x"))[0] == 2
        assert libbpf.test_run(fd, bytes(v4 / ICMP(type=8, id=7))[:-4])[0] == 2  # 4 of the 8 echo header bytes
        v6 = eth / IPv6(src=lab.net6 + "2", dst=lab.vip6) / ICMPv6EchoRequest(id=7)
        assert libbpf.test_run(fd, bytes(v6))[0] == 2  # no icmp service on the IPv6 VIP: passes
    finally:
        os.close(fd)


def test_rollback_restores_tables_and_backends_then_removes_the_balancer(lab):
    def contents():
        with netns(lab.ns["lb"]):
            return {name: maps.PinnedMap(lab.maps[name]).dump() for name in ("lb_maglev", "lb_backends", "lb_services")}
    # small tables: a checkpoint holds every used slot, and this test is about what comes back, not about size
    lab.write(lab.services(weights={"b1": 1, "b2": 1, "b3": 2}), size=401)
    before = contents()
    with netns(lab.ns["lb"]):
        checkpoint.begin(lab.state_dir)
    lab.write(lab.services(weights={"b1": 1, "b2": None, "b3": 2}, v6=False), size=401)
    with netns(lab.ns["lb"]):
        checkpoint.commit(lab.state_dir)
    changed = contents()
    assert changed["lb_maglev"] != before["lb_maglev"] and len(changed["lb_services"]) == 3
    with netns(lab.ns["lb"]):
        snap = checkpoint.take(lab.state_dir)
        # a checkpoint holds the used slots only, not the whole array
        assert len(snap["programs"][0]["maps"]["lb_maglev"]["entries"]) == 3 * 401
        checkpoint.rollback("previous", "/sys/fs/bpf", lab.state_dir)
    assert contents() == before
    with netns(lab.ns["lb"]):
        checkpoint.rollback("none", "/sys/fs/bpf", lab.state_dir)
    assert "prog/xdp" not in run(["ip", "-n", lab.ns["lb"], "-d", "link", "show", lab.ifname]).stdout
