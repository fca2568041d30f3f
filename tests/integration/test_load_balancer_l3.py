# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""load_balancer across L3: backends in other subnets, reached through a router namespace, by IPIP and IP6IP6.

    client --- router --- balancer (XDP: Maglev, then an outer header to the backend, XDP_TX back to the router)
                 |  \\
                 b1   b2  (each its own subnet; lb_decap.bpf.c takes the outer header off, the VIP is on lo)

The client reaches the VIP through the router (a route to the balancer); a backend answers the client from the VIP,
through the router, never through the balancer (direct server return). This kernel has no ipip or ip6_tunnel
module, so the backends decapsulate with lb_decap (the role's `xdp` decapsulation); the role's kernel tunnel
devices are not exercised here. Flows land where the Maglev table says: the test recomputes the program's flow hash.
"""

import ipaddress
import os
import random
import socket
import struct
import threading

import pytest
from conftest import BPF, TEST_BPF, xdp_hook
from netlab import netns, run, tx_checksum_off

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import hooks, info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import neigh
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _maglev

LB = os.path.join(BPF, "load_balancer.bpf.c")
DECAP = os.path.join(BPF, "lb_decap.bpf.c")
PASS = os.path.join(os.path.dirname(os.path.dirname(TEST_BPF)), "..", "bench", "bpf", "bare_pass.bpf.c")
PORT = 8080
CONNECTIONS = 24
MASK32 = 0xFFFFFFFF


def lb_hash(saddr, daddr, sport, dport, proto):
    """load_balancer.bpf.c's lb_hash() of a flow, in Python: the table slot a new flow takes is this % size."""
    flow = (ipaddress.ip_address(_maglev.mapped(saddr)).packed + ipaddress.ip_address(_maglev.mapped(daddr)).packed
            + struct.pack("!HH", sport, dport) + bytes([proto, 0, 0, 0]))
    h = 0x9747B28C
    for (w,) in struct.iter_unpack("<I", flow):
        k = (w * 0xCC9E2D51) & MASK32
        k = ((k << 15) | (k >> 17)) & MASK32
        h ^= (k * 0x1B873593) & MASK32
        h = ((((h << 13) | (h >> 19)) & MASK32) * 5 + 0xE6546B64) & MASK32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


class RoutedLab:
    def __init__(self, objects):
        self.sfx = "%05x" % random.randrange(1 << 20)
        k = random.randrange(1, 250)
        self.k = k
        self.ns = {n: "wsl3%s%s" % (n, self.sfx) for n in ("rt", "cl", "lb", "b1", "b2")}
        self.subnet = {"cl": 1, "lb": 2, "b1": 3, "b2": 4}
        self.addr = {n: "10.%d.%d.2" % (k, i) for n, i in self.subnet.items()}
        self.addr6 = {n: "fd00:%x:%x::2" % (k, i) for n, i in self.subnet.items()}
        self.vip, self.vip6 = "10.%d.9.1" % k, "fd00:%x:9::1" % k
        self.ifname = "l3lb%s" % self.sfx
        self.objects = objects
        self.state_dir = "/tmp/wsl3state%s" % self.sfx
        self.pins = [os.path.join("/sys/fs/bpf/wirespeed", self.ifname)]
        self.servers, self.stop = [], threading.Event()

    def sysctl(self, ns, *settings):
        for s in settings:
            run(["ip", "netns", "exec", self.ns[ns], "sysctl", "-qw", s])

    def up(self):
        for ns in self.ns.values():
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        self.sysctl("rt", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        for n, i in self.subnet.items():
            dev = self.ifname if n == "lb" else "eth0"
            rdev = "r%s%s" % (n, self.sfx)
            run(["ip", "-n", self.ns["rt"], "link", "add", rdev, "type", "veth", "peer", "name", dev,
                 "netns", self.ns[n]])
            run(["ip", "-n", self.ns["rt"], "addr", "add", "10.%d.%d.1/24" % (self.k, i), "dev", rdev])
            run(["ip", "-n", self.ns["rt"], "addr", "add", "fd00:%x:%x::1/64" % (self.k, i), "dev", rdev, "nodad"])
            run(["ip", "-n", self.ns["rt"], "link", "set", rdev, "up"])
            run(["ip", "-n", self.ns[n], "addr", "add", self.addr[n] + "/24", "dev", dev])
            run(["ip", "-n", self.ns[n], "addr", "add", self.addr6[n] + "/64", "dev", dev, "nodad"])
            run(["ip", "-n", self.ns[n], "link", "set", dev, "up"])
            run(["ip", "-n", self.ns[n], "route", "add", "default", "via", "10.%d.%d.1" % (self.k, i)])
            run(["ip", "-n", self.ns[n], "-6", "route", "add", "default", "via", "fd00:%x:%x::1" % (self.k, i)])
        # the VIPs are routed to the balancer
        run(["ip", "-n", self.ns["rt"], "route", "add", self.vip + "/32", "via", self.addr["lb"]])
        run(["ip", "-n", self.ns["rt"], "-6", "route", "add", self.vip6 + "/128", "via", self.addr6["lb"]])
        # XDP_TX on a veth reaches the router only when the router's end runs XDP
        run(["ip", "-n", self.ns["rt"], "link", "set", "dev", "rlb%s" % self.sfx, "xdpdrv", "obj",
             self.objects["build"](os.path.abspath(PASS)), "sec", "xdp"])
        with netns(self.ns["cl"]):  # the balancer sends frames as they came: checksums must be complete
            tx_checksum_off("eth0")
        for b in ("b1", "b2"):  # the backend: VIPs on lo, lb_decap on eth0 (entry point backend, decap xdp)
            for vip in (self.vip + "/32", self.vip6 + "/128"):
                run(["ip", "-n", self.ns[b], "addr", "add", vip, "dev", "lo"])
            self.sysctl(b, "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.eth0.rp_filter=2")
            self.pins.append(os.path.join("/sys/fs/bpf/wirespeed", "%s:eth0" % self.ns[b]))
            # the engine's netns option: pins under wirespeed/<netns>:eth0, apart from every other eth0
            decap = hooks.deploy(xdp_hook("eth0", "lb_decap", root_object=self.objects["root"], mode="native",
                                          state_dir=self.state_dir + b, object_path=self.objects["build"](DECAP),
                                          priority=5, netns=self.ns[b]))
            vips = [{"key": {"addr": a}, "value": 1} for a in (_maglev.mapped(self.vip), self.vip6)]
            mapsync.sync(decap["maps"]["lb_decap_vips"], entries=vips, exclusive=True)
            setattr(self, "decap_" + b, decap["maps"])
        return self

    def deploy(self):
        with netns(self.ns["lb"]):
            req = xdp_hook(self.ifname, "lb", root_object=self.objects["root"], state_dir=self.state_dir,
                           object_path=self.objects["build"](LB), mode="native",
                           config={"encap_v4_saddr": self.addr["lb"], "encap_v6_saddr": self.addr6["lb"]})
            self.maps = hooks.deploy(req)["maps"]

    def services(self):
        return [{"vip": self.vip, "proto": "tcp", "port": PORT, "encap": "ipip",
                 "backends": [self.addr["b1"], self.addr["b2"]]},
                {"vip": self.vip6, "proto": "tcp", "port": PORT, "encap": "ip6ip6",
                 "backends": [self.addr6["b1"], self.addr6["b2"]]}]

    def write(self):
        with netns(self.ns["lb"]):
            backends = [self.addr["b1"], self.addr["b2"], self.addr6["b1"], self.addr6["b2"]]
            self.macs = neigh.resolve_routed(self.ifname, backends)
            checked = _maglev.check(self.services(), macs=self.macs)
            ent = _maglev.entries(checked)
            mapsync.sync(self.maps["lb_backends"], entries=ent["backends"])
            for t in ent["tables"]:
                mapsync.sync_packed(self.maps["lb_maglev"], t["table"], t["index"] * _maglev.MAX_SIZE,
                                    t["digest"], count=_maglev.MAX_SIZE)
            mapsync.sync(self.maps["lb_services"], entries=ent["services"], exclusive=True)
        self.tables = {t["vip"]: (_maglev.unpack(t["table"]), {int(k): v for k, v in t["backends"].items()})
                       for t in ent["tables"]}
        return ent

    def serve(self):
        """A TCP server on each VIP in each backend: it answers every connection with its backend's name."""
        for b in ("b1", "b2"):
            for family, vip in ((socket.AF_INET, self.vip), (socket.AF_INET6, self.vip6)):
                with netns(self.ns[b]):
                    srv = socket.socket(family, socket.SOCK_STREAM)
                srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                srv.bind((vip, PORT))
                srv.listen(64)
                srv.settimeout(0.2)
                self.servers.append(srv)
                threading.Thread(target=self._answer, args=(srv, b.encode()), daemon=True).start()

    def _answer(self, srv, name):
        while not self.stop.is_set():
            try:
                conn, _peer = srv.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                conn.sendall(name)

    def connect(self, v6, sport):
        """One TCP connection from the client to the VIP from sport: (the backend that answered, the address the
        answer came from)."""
        family = socket.AF_INET6 if v6 else socket.AF_INET
        with netns(self.ns["cl"]):
            sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(3)
            sock.bind((self.addr6["cl"] if v6 else self.addr["cl"], sport))
            sock.connect((self.vip6 if v6 else self.vip, PORT))
            return sock.recv(16).decode(), sock.getpeername()[0]
        finally:
            sock.close()

    def expected(self, v6, sport):
        vip = self.vip6 if v6 else self.vip
        table, names = self.tables[vip]
        h = lb_hash(self.addr6["cl"] if v6 else self.addr["cl"], vip, sport, PORT, 6)
        addr = names[table[h % len(table)]]
        return next(b for b in ("b1", "b2") if addr in (self.addr[b], self.addr6[b]))

    def close(self):
        self.stop.set()
        for s in self.servers:
            s.close()
        for ns in self.ns.values():
            run(["ip", "netns", "del", ns], check=False)
        for path in self.pins + [self.state_dir, self.state_dir + "b1", self.state_dir + "b2"]:
            run(["rm", "-rf", path], check=False)


@pytest.fixture(scope="module")
def lab(objects):
    lab = RoutedLab(objects)
    try:
        lab.up()
        lab.deploy()
        lab.write()
        lab.serve()
        yield lab
    finally:
        lab.close()


def test_next_hop_is_the_router(lab):
    router_mac = run(["ip", "-n", lab.ns["rt"], "-br", "link", "show", "rlb%s" % lab.sfx]).stdout.split()[2]
    assert set(lab.macs.values()) == {router_mac}


@pytest.mark.parametrize("v6", [False, True], ids=["ipip", "ip6ip6"])
def test_tcp_connections_complete_from_the_vip_spread_by_maglev(lab, v6):
    ports = random.sample(range(20000, 60000), CONNECTIONS)
    got = {p: lab.connect(v6, p) for p in ports}
    vip = lab.vip6 if v6 else lab.vip
    assert {peer for _name, peer in got.values()} == {vip}  # answered from the VIP
    assert {p: name for p, (name, _peer) in got.items()} == {p: lab.expected(v6, p) for p in ports}
    assert {name for name, _peer in got.values()} == {"b1", "b2"}
    for b in ("b1", "b2"):
        assert info.outcome_counters(getattr(lab, "decap_" + b)["lb_decap_stats"], ("done", "not_vip"))["done"]


def test_answers_do_not_pass_the_balancer(lab):
    """Direct server return: the balancer sees the client's packets only (one per packet the client sent)."""
    with netns(lab.ns["lb"]):
        before = info.action_counters(lab.maps["ws_stats"])["tx"]["packets"]
    name, _peer = lab.connect(False, random.randrange(20000, 60000))
    with netns(lab.ns["lb"]):
        after = info.action_counters(lab.maps["ws_stats"])["tx"]["packets"]
    # SYN, ACK, FIN/ACK, maybe an ACK of the data: the answer's packets (SYN/ACK, data, FIN) never came through
    assert name in ("b1", "b2") and 2 <= after - before <= 5


def test_backend_without_a_route_or_routed_elsewhere_is_one_sentence(lab):
    with netns(lab.ns["lb"]):
        run(["ip", "-n", lab.ns["lb"], "route", "add", "unreachable", "10.%d.60.0/24" % lab.k])
        with pytest.raises(DatapathError) as err:
            neigh.next_hops(lab.ifname, ["10.%d.60.7" % lab.k])
        msg = err.value.message
        assert msg.startswith("backend 10.%d.60.7 has no route" % lab.k) and msg.count("; ") == 1, msg
        run(["ip", "-n", lab.ns["lb"], "link", "add", "x%s" % lab.sfx, "type", "veth", "peer", "name",
             "y%s" % lab.sfx])
        run(["ip", "-n", lab.ns["lb"], "addr", "add", "10.%d.61.1/24" % lab.k, "dev", "x%s" % lab.sfx])
        run(["ip", "-n", lab.ns["lb"], "link", "set", "x%s" % lab.sfx, "up"])
        with pytest.raises(DatapathError) as err:
            neigh.next_hops(lab.ifname, ["10.%d.61.7" % lab.k])
        assert "not through %s where the balancer sends" % lab.ifname in err.value.message


def test_encap_must_match_the_vip_family(lab):
    services = lab.services()
    services[0]["encap"] = "ip6ip6"
    with pytest.raises(_maglev.AddressError) as err:
        _maglev.check(services)
    assert "encap is 'ip6ip6'; an IPv4 VIP takes none" in str(err.value)


def test_status_rows_name_the_encapsulation(lab):
    with netns(lab.ns["lb"]):
        rows = info.backend_counters(lab.maps)
    assert {r["encap"] for r in rows} == {"ipip", "ip6ip6"} and all(r["packets"] for r in rows)
