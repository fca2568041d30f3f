# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jumbo frames: native XDP on a veth pair with MTU 9000, 8000-byte datagrams through the shipped programs.

A single-buffer XDP program is refused on such an interface by the kernel (veth: the peer's MTU must fit a page);
the chain is then built for multi-buffer packets (wirespeed_frags and every program with BPF_F_XDP_HAS_FRAGS), and
veth hands the programs packets whose tail sits in fragments. Verdicts are proven with real datagrams and with the
programs' own counters (their byte counts cover the whole packet, not the first buffer).
"""

import os
import random
import shutil
import socket
import time

import pytest
from conftest import BPF, TEST_BPF, xdp_hook
from netlab import netns, run

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import hooks, info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _maglev

MTU = 9000
BIG = 8000  # UDP payload bytes: one 8042-byte frame, more than a page


@pytest.fixture
def jumbo(dut):
    for ns, dev in ((dut.dut, dut.ifname), (dut.peer, dut.peer_if)):
        run(["ip", "-n", ns, "link", "set", "dev", dev, "mtu", str(MTU)])
    return dut


def send_big(dut, port, payload=None, dst=None, count=1):
    """`count` datagrams of BIG bytes from peer to dst (the dut's address) and port, never fragmented."""
    with netns(dut.peer):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO: no IP fragments
        for _datagram in range(count):
            sock.sendto(payload or b"j" * BIG, (dst or dut.dut_ip, port))
    finally:
        sock.close()


def received(sock, want, limit=5.0):
    """Sizes of the datagrams that arrived, waiting until `want` did or nothing came for a second."""
    sizes, start, last = [], time.monotonic(), time.monotonic()
    while len(sizes) < want and time.monotonic() - start < limit and time.monotonic() - last < 1.0:
        try:
            sizes.append(len(sock.recv(65536)))
            last = time.monotonic()
        except BlockingIOError:
            time.sleep(0.005)
    return sizes


def receiver(ns, addr, port):
    with netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, port))
    sock.setblocking(False)
    return sock


def reasons(maps):
    return {k: v["packets"] for k, v in info.reason_counters(maps["ws_reasons"]).items() if v["packets"]}


def passed(maps):
    return info.action_counters(maps["ws_stats"]).get("pass", {"packets": 0, "bytes": 0})


def test_firewall_and_ssh_limiter_in_a_multi_buffer_chain(jumbo, objects):
    dut = jumbo
    fw = dut.deploy("fw", objects["build"](os.path.join(BPF, "firewall.bpf.c")), mode="native", priority=10)
    sl = dut.deploy("sl", objects["build"](os.path.join(BPF, "ssh_limiter.bpf.c")), mode="native", priority=20,
                    config={"ports": [22], "max_new": 1, "window_ms": 60000, "ban_s": 0})
    assert fw["changed"] and fw["mode"] == "native" and "wirespeed_frags" in dut.xdp_prog()
    assert not dut.deploy("fw", objects["build"](os.path.join(BPF, "firewall.bpf.c")), mode="native",
                          priority=10)["changed"]
    mapsync.sync(sl["maps"]["ws_clock"], entries={0: {"offset_ns": 0, "frozen_ns": 0}})  # the real clock
    port = random.randrange(20000, 30000)
    sock = receiver(dut.dut, dut.dut_ip, port)
    try:
        send_big(dut, port, count=2)
        assert received(sock, 2) == [BIG, BIG]  # through the firewall and the limiter
        # every byte counted: bpf_xdp_get_buff_len, not the first buffer's data_end - data
        assert passed(sl["maps"])["bytes"] >= 2 * (BIG + 42)
        mapsync.sync(fw["maps"]["deny_v4"], entries=[dut.peer_ip], key_type="ipv4")
        send_big(dut, port, count=2)
        assert received(sock, 1, limit=1.5) == []
        assert reasons(fw["maps"]).get("deny_addr") == 2
        mapsync.sync(fw["maps"]["deny_v4"], entries=[], key_type="ipv4", exclusive=True)
        send_big(dut, port)
        assert received(sock, 1) == [BIG]
    finally:
        sock.close()
    # two jumbo SYNs to port 22 (a SYN may carry data): the first reaches the stack, the second is over the limit
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    mac = run(["ip", "-n", dut.dut, "-br", "link", "show", dut.ifname]).stdout.split()[2]
    frame = bytes(Ether(dst=mac) / IP(src=dut.peer_ip, dst=dut.dut_ip) / TCP(sport=40001, dport=22, flags="S")
                  / (b"s" * BIG))
    with netns(dut.peer):
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        raw.bind((dut.peer_if, 0))
        raw.send(frame)
        raw.send(frame)
    finally:
        raw.close()
    deadline = time.monotonic() + 5
    while reasons(sl["maps"]).get("syn_limit", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reasons(sl["maps"]) == {"syn_limit": 1}


def test_wireguard_filter_passes_a_jumbo_transport_message(jumbo, objects):
    dut = jumbo
    wg = dut.deploy("wg", objects["build"](os.path.join(BPF, "wireguard_filter.bpf.c")), mode="native",
                    config={"ports": [51820]})
    assert "wirespeed_frags" in dut.xdp_prog()
    sock = receiver(dut.dut, dut.dut_ip, 51820)
    try:
        transport = b"\x04\0\0\0" + b"\xab" * (BIG - 4)  # type 4, a multiple of 16 bytes: well formed
        send_big(dut, 51820, transport)
        assert received(sock, 1) == [BIG]
        send_big(dut, 51820, b"\x04\0\0\0" + b"\xab" * (BIG - 4 + 8))  # not a multiple of 16
        send_big(dut, 51820, b"\x05\0\0\0" + b"\xab" * (BIG - 4))  # no such message type
        assert received(sock, 1, limit=1.5) == []
        assert reasons(wg["maps"]) == {"wg_invalid": 2}
    finally:
        sock.close()


def test_load_balancer_forwards_a_jumbo_datagram_with_xdp_tx(jumbo, objects):
    """The peer sends a jumbo datagram to the VIP through the balancer; the balancer sends the frame back out
    (XDP_TX) to the backend's MAC, and a packet socket on the peer's end sees it whole, its payload untouched."""
    dut = jumbo
    # XDP_TX on veth reaches the other end only when that end runs XDP: a frags-aware pass-all program
    peer_pins = os.path.join(dut.bpffs, "wirespeed", dut.peer_if)
    try:
        with netns(dut.peer):
            hooks.deploy(xdp_hook(dut.peer_if, "pass", root_object=objects["root"], mode="native",
                                  state_dir=dut.state_dir + "/peer", object_path=objects["drop_port"]))
        balance_one_jumbo_datagram(dut, objects)
    finally:
        shutil.rmtree(peer_pins, ignore_errors=True)


def balance_one_jumbo_datagram(dut, objects):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    vip, port, backend, backend_mac = "198.18.%d.9" % random.randrange(1, 255), 5353, "198.18.0.77", "02:00:00:00:be:01"
    dut_mac = run(["ip", "-n", dut.dut, "-br", "link", "show", dut.ifname]).stdout.split()[2]
    lb = dut.deploy("lb", objects["build"](os.path.join(BPF, "load_balancer.bpf.c")), mode="native")
    services = [{"vip": vip, "proto": "udp", "port": port, "backends": [{"address": backend}]}]
    ent = _maglev.entries(_maglev.check(services, macs={backend: backend_mac}))
    mapsync.sync(lb["maps"]["lb_backends"], entries=ent["backends"])
    for t in ent["tables"]:
        mapsync.sync_packed(lb["maps"]["lb_maglev"], t["table"], t["index"] * _maglev.MAX_SIZE, t["digest"],
                            count=_maglev.MAX_SIZE)
    mapsync.sync(lb["maps"]["lb_services"], entries=ent["services"], exclusive=True)
    payload = bytes(random.randrange(256) for _byte in range(BIG))
    frame = bytes(Ether(dst=dut_mac) / IP(src=dut.peer_ip, dst=vip) / UDP(sport=40002, dport=port) / payload)
    with netns(dut.peer):
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    try:
        raw.bind((dut.peer_if, 0))
        raw.settimeout(0.2)
        raw.send(frame)
        got, deadline = None, time.monotonic() + 5
        while got is None and time.monotonic() < deadline:
            try:
                data, addr = raw.recvfrom(65536)
            except socket.timeout:
                continue
            if addr[2] != 4 and data[:6] == bytes.fromhex(backend_mac.replace(":", "")):  # 4: PACKET_OUTGOING
                got = data
    finally:
        raw.close()
    assert got is not None, "the balancer sent nothing back"
    assert got[6:12] == bytes.fromhex(dut_mac.replace(":", "")) and got[12:] == frame[12:]
    stats = info.action_counters(lb["maps"]["ws_stats"])
    assert stats["tx"]["packets"] == 1 and stats["tx"]["bytes"] == len(frame)


def test_a_program_that_is_not_frags_aware_is_refused_in_one_sentence(jumbo, objects):
    dut = jumbo
    plain = objects["build"](os.path.join(TEST_BPF, "drop_all.bpf.c"))
    for check_mode in (True, False):
        with pytest.raises(DatapathError) as err:
            dut.deploy("plain", plain, check_mode=check_mode)
        msg = err.value.message
        assert "MTU 9000" in msg and "'drop_all'" in msg and 'SEC("xdp.frags")' in msg, msg
        assert msg.count(". ") == 0 and msg.endswith(".")
        assert dut.xdp_prog() == ""
        assert not os.path.exists(dut.pin_root) or not os.listdir(dut.pin_root)
    # generic mode takes it: the kernel hands a generic program a linear skb
    assert dut.deploy("plain", plain, mode="generic")["mode"] == "generic"
    # a frags-aware program on a jumbo chain, then the plain one: refused, naming the chain
    dut.remove("plain", mode="generic")
    dut.deploy("fw", objects["build"](os.path.join(BPF, "firewall.bpf.c")))
    run(["ip", "-n", dut.dut, "link", "set", "dev", dut.ifname, "mtu", "1500"])
    with pytest.raises(DatapathError) as err:
        dut.deploy("plain", plain, priority=200)
    assert "built for multi-buffer packets" in err.value.message and "'drop_all'" in err.value.message
    assert "wirespeed_frags" in dut.xdp_prog()


def test_single_buffer_chain_is_kept_below_a_page(dut, objects):
    """At MTU 1500 nothing changes: the single-buffer root, and a plain program chains after a shipped one."""
    dut.deploy("fw", objects["build"](os.path.join(BPF, "firewall.bpf.c")))
    dut.deploy("plain", objects["blocklist"], priority=200)
    assert "wirespeed_root" in dut.xdp_prog()
    assert dut.udp(7000) == 20
    # the kernel then refuses a jumbo MTU (a single-buffer program is attached): the MTU cannot change under us
    assert run(["ip", "-n", dut.peer, "link", "set", "dev", dut.peer_if, "mtu", str(MTU)], check=False).returncode
