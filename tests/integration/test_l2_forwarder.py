# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The L2 forwarder and XDP in other network namespaces, through the engine (no Ansible).

One lab for the file: namespaces `a` and `b` are each joined by a veth pair to
the forwarder's namespace `fwd`, which holds no bridge, no addresses and no IP
forwarding. Both far ends carry the same interface name, so their records and
pins must stay apart. The engine runs in the test's own namespace and reaches
every interface with the netns option only; pins stay in this bpffs.
"""

import importlib.util
import os
import random
import shutil
import tempfile

import pytest
from conftest import BPF, INCLUDE, REPO, xdp_hook
from netlab import netns, run

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import checkpoint, hooks, info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf, maps
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program import compile as bpfcc
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.store import StateStore

# the traffic of the molecule scenario, run on lab hosts there and in this process here
_SPEC = importlib.util.spec_from_file_location("l2_traffic", os.path.join(REPO, "tests", "lab", "l2_traffic.py"))
l2_traffic = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(l2_traffic)

BPFFS = "/sys/fs/bpf"


class L2Lab:
    def __init__(self, cache_dir):
        sfx = "%05x" % random.randrange(1 << 20)
        self.a, self.b, self.fwd = "wsl2a" + sfx, "wsl2b" + sfx, "wsl2f" + sfx
        self.port_a, self.port_b = "wsfa" + sfx, "wsfb" + sfx
        self.end = "wsl2e" + sfx  # the same name in a and in b
        octet = random.randrange(1, 255)
        self.ip_a, self.ip_b = "198.19.%d.1" % octet, "198.19.%d.2" % octet
        self.state_dir = tempfile.mkdtemp(prefix="wsl2state-")
        self.objects = {short: bpfcc.compile_source(os.path.join(BPF, name), [INCLUDE], {}, cache_dir=cache_dir)["path"]
                        for short, name in (("root", "wirespeed_root.bpf.c"), ("fwd", "l2_forwarder.bpf.c"),
                                            ("peer", "l2_peer.bpf.c"))}
        for ns in (self.a, self.b, self.fwd):
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for ns, port, ip in ((self.a, self.port_a, self.ip_a), (self.b, self.port_b, self.ip_b)):
            run(["ip", "-n", self.fwd, "link", "add", port, "type", "veth", "peer", "name", self.end, "netns", ns])
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", self.end])
            run(["ip", "-n", ns, "link", "set", self.end, "up"])
            run(["ip", "-n", self.fwd, "link", "set", port, "up"])
        self.mac = {ns: self.link(ns, self.end)["address"] for ns in (self.a, self.b)}
        self.ifindex = {p: self.link(self.fwd, p)["ifindex"] for p in (self.port_a, self.port_b)}

    @staticmethod
    def link(ns, dev):
        import json
        return json.loads(run(["ip", "-n", ns, "-j", "link", "show", "dev", dev]).stdout)[0]

    def hook(self, interface, name, obj, ns, **kw):
        return xdp_hook(interface, name, root_object=self.objects["root"], object_path=self.objects[obj],
                        state_dir=self.state_dir, netns=ns, **kw)

    def deploy_all(self, check_mode=False):
        """The forwarder on both ports, the pass program on both far ends; the results."""
        out = []
        for port in (self.port_a, self.port_b):
            out.append(hooks.deploy(self.hook(port, "l2_forwarder", "fwd", self.fwd, priority=60), check_mode))
        for ns in (self.a, self.b):
            out.append(hooks.deploy(self.hook(self.end, "l2_peer", "peer", ns, priority=60), check_mode))
        return out

    def fill_maps(self):
        specs = [{"map": "l2_ports", "entries": {i: i for i in self.ifindex.values()}, "key_type": "u32",
                  "value_type": "u32", "exclusive": True},
                 {"map": "l2_fdb", "entries": {self.mac[self.a]: self.ifindex[self.port_a],
                                               self.mac[self.b]: self.ifindex[self.port_b]},
                  "key_type": "mac", "value_type": "u32", "exclusive": True}]
        with netns(self.fwd):  # a devmap takes the ifindexes of the namespace of whoever writes it
            for port in (self.port_a, self.port_b):
                mapsync.sync_all(specs, interface="%s:%s" % (self.fwd, port), name="l2_forwarder", bpffs_path=BPFFS)

    def pins(self, port):
        return os.path.join(BPFFS, "wirespeed", "%s:%s" % (self.fwd, port), "l2_forwarder")

    def counters(self):
        """{port: {forwarded, flooded, passed, unknown}} summed over CPUs."""
        out = {}
        for port in (self.port_a, self.port_b):
            path = os.path.join(BPFFS, "wirespeed", "%s:%s" % (self.fwd, port), "l2_forwarder", "maps", "l2_counters")
            with maps.PinnedMap(path) as m:
                raw = m.dump()
            values = {int.from_bytes(k, "little"): sum(int.from_bytes(v[i:i + 8], "little")
                                                       for i in range(0, len(v), m.stride)) for k, v in raw.items()}
            out[port] = {n: values.get(i, 0) for i, n in enumerate(("forwarded", "flooded", "passed", "unknown"))}
        return out

    def flush_neighbours(self):
        for ns in (self.a, self.b):
            run(["ip", "-n", ns, "neigh", "flush", "all"], check=False)

    def ping(self, count=5):
        """Echo replies b sent a (tests/lab/l2_traffic.py: a raw socket made inside a)."""
        return l2_traffic.ping(self.a, self.ip_b, count)

    def udp(self, count=200):
        """Datagrams from a that b received."""
        return l2_traffic.udp(self.a, self.b, self.ip_b, count)

    def close(self):
        for ns in (self.a, self.b, self.fwd):
            shutil.rmtree(os.path.join(BPFFS, "wirespeed", "%s:%s" % (ns, self.end)), ignore_errors=True)
            for port in (self.port_a, self.port_b):
                shutil.rmtree(os.path.join(BPFFS, "wirespeed", "%s:%s" % (ns, port)), ignore_errors=True)
            run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(self.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def lab(cache_dir):
    net = L2Lab(cache_dir)
    try:
        yield net
    finally:
        net.close()


def test_no_bridge_and_no_forwarding_without_the_forwarder(lab):
    assert run(["ip", "-n", lab.fwd, "-j", "link", "show", "type", "bridge"]).stdout.strip() in ("", "[]")
    for port in (lab.port_a, lab.port_b):
        assert "master" not in lab.link(lab.fwd, port)
    assert run(["ip", "netns", "exec", lab.fwd, "sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"
    lab.flush_neighbours()
    assert lab.ping(2) == 0  # two separate wires: nothing joins them yet


def test_a_missing_namespace_is_one_sentence(lab):
    with pytest.raises(DatapathError) as exc:
        hooks.deploy(lab.hook(lab.end, "l2_peer", "peer", "wsl2-no-such-ns"))
    assert "network namespace 'wsl2-no-such-ns' does not exist" in exc.value.message
    assert not os.path.exists(os.path.join(BPFFS, "wirespeed", "wsl2-no-such-ns:%s" % lab.end))
    with pytest.raises(DatapathError, match="in network namespace"):
        hooks.deploy(lab.hook("wsl2nothere", "l2_peer", "peer", lab.a))


def test_forwarder_carries_arp_ping_and_udp_and_runs_idempotently(lab):
    # check mode: verified, nothing attached, nothing recorded
    assert all(r["changed"] for r in lab.deploy_all(check_mode=True))
    assert list(StateStore(lab.state_dir).records()) == []
    assert all(r["changed"] for r in lab.deploy_all())
    assert not any(r["changed"] for r in lab.deploy_all())  # twice: nothing to do
    lab.fill_maps()
    for ns in (lab.a, lab.b):  # the far ends run the pass program, natively
        xdp = lab.link(ns, lab.end).get("xdp") or {}
        assert xdp.get("mode") == 1, xdp  # XDP_ATTACHED_DRV
    keys = sorted(k for k, _n, _r in StateStore(lab.state_dir).records())
    assert keys == sorted(["%s:%s" % (lab.a, lab.end), "%s:%s" % (lab.b, lab.end),
                           "%s:%s" % (lab.fwd, lab.port_a), "%s:%s" % (lab.fwd, lab.port_b)])
    before = lab.counters()
    lab.flush_neighbours()
    assert lab.ping(5) == 5
    assert lab.udp(200) == 200
    after = lab.counters()
    # ARP requests flooded from a (broadcast), the echo requests and UDP forwarded by MAC, replies likewise
    assert after[lab.port_a]["flooded"] >= before[lab.port_a]["flooded"] + 1
    assert after[lab.port_a]["forwarded"] >= before[lab.port_a]["forwarded"] + 205
    assert after[lab.port_b]["forwarded"] >= before[lab.port_b]["forwarded"] + 5
    # datapath_info sees every one of them in its namespace
    seen = info.gather(None, BPFFS, lab.state_dir)
    for key in keys:
        assert seen[key]["netns"] in (lab.a, lab.b, lab.fwd)
        assert seen[key]["programs"], key
    fwd_a = seen["%s:%s" % (lab.fwd, lab.port_a)]["programs"]["l2_forwarder"]
    assert fwd_a["counters"]["redirect"]["packets"] >= 206


def test_packet_table_through_test_run(lab):
    """The forwarder's verdict per frame (BPF_PROG_TEST_RUN: redirects are decided, not sent), and its counters."""
    from scapy.layers.l2 import ARP, Ether

    port_mac = lab.link(lab.fwd, lab.port_a)["address"]
    with netns(lab.fwd):
        mapsync.sync(os.path.join(lab.pins(lab.port_a), "maps", "l2_fdb"), entries={port_mac: 0}, key_type="mac",
                     value_type="u32")
    xdp_pass, xdp_redirect = 2, 4
    src = lab.mac[lab.a]
    cases = [
        ("ARP request (broadcast): flooded", Ether(src=src, dst="ff:ff:ff:ff:ff:ff") / ARP(), xdp_redirect, "flooded"),
        ("IPv6 multicast: flooded", Ether(src=src, dst="33:33:00:00:00:01", type=0x86DD) / (b"\x60" + b"\0" * 39),
         xdp_redirect, "flooded"),
        ("to b's MAC: forwarded", Ether(src=src, dst=lab.mac[lab.b]) / ARP(op=2), xdp_redirect, "forwarded"),
        ("to an unknown MAC: flooded", Ether(src=src, dst="02:12:34:56:78:9a") / ARP(op=2), xdp_redirect, "unknown"),
        ("to the port's own MAC: the host's stack", Ether(src=src, dst=port_mac) / ARP(op=2), xdp_pass, "passed"),
    ]
    fd = libbpf.obj_get(os.path.join(lab.pins(lab.port_a), "prog"))
    try:
        for description, frame, verdict, counter in cases:
            before = lab.counters()[lab.port_a][counter]
            assert libbpf.test_run(fd, bytes(frame))[0] == verdict, description
            assert lab.counters()[lab.port_a][counter] == before + 1, description
    finally:
        os.close(fd)


def test_checkpoint_rollback_removes_and_restores_in_the_namespaces(lab):
    snap = checkpoint.take(lab.state_dir)
    assert len(snap["programs"]) == 4
    # the same interface name in a and b: two programs, two records, two pins
    assert {checkpoint.record_of(p).netns for p in snap["programs"]} == {lab.a, lab.b, lab.fwd}
    history = checkpoint.History(lab.state_dir)
    history.push(snap)
    res = checkpoint.rollback("none", BPFFS, lab.state_dir)
    assert res["changed"]
    for ns in (lab.a, lab.b):
        assert "xdp" not in lab.link(ns, lab.end)
        assert not os.path.exists(os.path.join(BPFFS, "wirespeed", "%s:%s" % (ns, lab.end)))
    assert "xdp" not in lab.link(lab.fwd, lab.port_a)
    lab.flush_neighbours()
    assert lab.ping(2) == 0  # detached: the wires are apart again
    res = checkpoint.rollback("previous", BPFFS, lab.state_dir)
    assert res["changed"], res
    for ns in (lab.a, lab.b):
        assert (lab.link(ns, lab.end).get("xdp") or {}).get("mode") == 1
    lab.flush_neighbours()
    assert lab.ping(3) == 3  # programs and map contents (ports, fdb) are back
    assert not any(r["changed"] for r in lab.deploy_all())


def test_a_namespace_deleted_under_a_program_is_forgotten_on_removal(lab):
    ns = "wsl2g%05x" % random.randrange(1 << 20)
    run(["ip", "netns", "add", ns])
    try:
        run(["ip", "-n", ns, "link", "add", lab.end, "type", "veth", "peer", "name", lab.end + "x"])
        run(["ip", "-n", ns, "link", "set", lab.end, "up"])
        assert hooks.deploy(lab.hook(lab.end, "l2_peer", "peer", ns))["changed"]
    finally:
        run(["ip", "netns", "del", ns], check=False)
    key = "%s:%s" % (ns, lab.end)
    assert os.path.isdir(os.path.join(BPFFS, "wirespeed", key))
    with pytest.raises(DatapathError, match="network namespace '%s' does not exist" % ns):
        hooks.deploy(lab.hook(lab.end, "l2_peer", "peer", ns))
    assert key not in info.gather(None, BPFFS, lab.state_dir)  # nothing runs there to report
    assert hooks.remove(lab.hook(lab.end, "l2_peer", "peer", ns))["changed"]
    assert StateStore(lab.state_dir).current(key, "l2_peer") is None
    assert not os.path.exists(os.path.join(BPFFS, "wirespeed", key))
    assert not hooks.remove(lab.hook(lab.end, "l2_peer", "peer", ns))["changed"]
