# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""af_xdp: the steering program and the example consumer on a veth pair, with real datagrams.

One lab for the file (the tests run in order on it): matching datagrams fall
back to the kernel while no socket is attached, reach the example consumer
once it is, and everything else (another port, ICMP) reaches the kernel
stack all along; datapath_info reports per queue whether the map holds a socket.
"""

import json
import os
import random
import socket
import struct
import subprocess
import sys
import time

import pytest
from conftest import BPF, REPO, Dut
from netlab import netns
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf, xsks

PORT, OTHER, TCP_PORT = 7400, 7401, 7402
CONSUMER = os.path.join(REPO, "files", "af_xdp", "xsk_consumer.py")


@pytest.fixture(scope="module")
def lab(objects):
    net = Dut(objects)
    try:
        net.deploy("af_xdp", objects["build"](os.path.join(BPF, "af_xdp.bpf.c")), mode="native",
                   config={"udp_ports": [PORT], "tcp_ports": [TCP_PORT], "queue_mask": 1})
        yield net
    finally:
        net.close()


def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def echo(net, count=3):
    """ICMP echo requests from peer to dut (this machine has no ping): how many were answered, 1 s each at most."""
    with netns(net.peer):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident, answered = random.randrange(1, 0xFFFF), 0
    try:
        for seq in range(count):
            head = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"wirespeed af_xdp"
            sock.sendto(head[:2] + struct.pack("!H", checksum(head)) + head[4:], (net.dut_ip, 0))
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                try:
                    reply = sock.recv(2048)
                except socket.timeout:
                    break
                icmp = reply[(reply[0] & 0x0F) * 4:]
                if icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (ident, seq):
                    answered += 1
                    break
    finally:
        sock.close()
    return answered


def queues(net):
    with netns(net.dut):
        found = info.gather([net.ifname], state_dir=net.state_dir)
    return found[net.ifname]["programs"]["af_xdp"]["xsk_queues"]


def counters(net):
    with netns(net.dut):
        found = info.gather([net.ifname], state_dir=net.state_dir)
    return {k: v["packets"] for k, v in found[net.ifname]["programs"]["af_xdp"]["counters"].items()}


def test_no_socket_falls_back_to_the_kernel(lab):
    assert queues(lab) == [{"queue": 0, "socket": False, "bound": None, "redirected": 0, "fallback": 0}]
    assert lab.udp(PORT, count=20) == 20
    assert queues(lab)[0]["fallback"] == 20 and queues(lab)[0]["redirected"] == 0
    assert counters(lab)["redirect"] == 0


def test_consumer_receives_the_matching_datagrams(lab):
    before = counters(lab)
    # nsenter keeps this /sys (and so the bpffs with the pinned map); `ip netns exec` would hide it
    consumer = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % lab.dut, sys.executable, CONSUMER,
                                 "--interface", lab.ifname, "--queue", "0", "--frames", "30", "--seconds", "10"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert consumer.stderr.readline().strip() == "ready", consumer.stderr.read()
        attached = queues(lab)
        kernel = lab.receiver(PORT)
        try:
            lab.start_sender(PORT, 30).wait(timeout=30)
            out, err = consumer.communicate(timeout=20)
            to_kernel = lab.drain(kernel, idle=0.3, limit=3)
        finally:
            kernel.close()
        other = lab.udp(OTHER, count=20)
        pings = echo(lab, 3)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    summary = json.loads(out)
    assert summary["frames"] == 30 and summary["by_port"] == {"udp/%d" % PORT: 30}, (summary, err)
    assert to_kernel == 0  # steered, not delivered twice
    assert other == 20 and pings == 3  # everything else still reaches the kernel stack
    assert attached[0]["socket"] is True and attached[0]["bound"] in (None, 1)  # None: no xdp_diag here
    after = counters(lab)
    assert after["redirect"] - before["redirect"] == 30
    assert queues(lab)[0]["redirected"] == 30
    assert after["pass"] - before["pass"] >= 20 + 3


def test_socket_gone_after_the_consumer_exits(lab):
    assert queues(lab)[0]["socket"] is False
    before = queues(lab)[0]["fallback"]
    assert lab.udp(PORT, count=10) == 10  # the kernel removed the socket from the map on close: fallback again
    assert queues(lab)[0]["fallback"] - before == 10


def test_probe_reads_an_empty_map(lab):
    found = xsks.in_map(os.path.join(lab.pin_root, "af_xdp", "maps", "xsks"), range(64))
    assert found == {q: False for q in range(64)}


ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
V4, V6 = IP(src="198.19.9.2", dst="198.19.9.1"), IPv6(src="2001:db8::2", dst="2001:db8::1")
FRAMES = [
    ("udp v4 to the port", ETH / V4 / UDP(sport=5000, dport=PORT) / (b"x" * 20), True),
    ("udp v6 to the port", ETH / V6 / UDP(sport=5000, dport=PORT) / (b"x" * 20), True),
    ("tcp v4 to the tcp port", ETH / V4 / TCP(sport=5000, dport=TCP_PORT, flags="S"), True),
    ("tcp v6 to the tcp port", ETH / V6 / TCP(sport=5000, dport=TCP_PORT, flags="S"), True),
    ("tcp to the udp port", ETH / V4 / TCP(sport=5000, dport=PORT, flags="S"), False),
    ("udp to the tcp port", ETH / V6 / UDP(sport=5000, dport=TCP_PORT), False),
    ("udp to another port", ETH / V4 / UDP(sport=5000, dport=OTHER), False),
    ("icmp echo", ETH / V4 / ICMP(), False),
    ("later fragment", ETH / IP(src="198.19.9.2", dst="198.19.9.1", proto=17, frag=100) / (b"x" * 40), False),
    ("arp", ETH / ARP(pdst="198.19.9.1"), False),
    ("truncated udp", bytes(ETH / V4 / UDP(sport=5000, dport=PORT))[:38], False),
]


@pytest.mark.parametrize("description,frame,steered", FRAMES, ids=[f[0] for f in FRAMES])
def test_what_is_steered(lab, description, frame, steered):
    """No socket on queue 0 (BPF_PROG_TEST_RUN's queue): a steered frame falls back, counted; the rest passes."""
    before = queues(lab)[0]["fallback"]
    fd = libbpf.obj_get(os.path.join(lab.pin_root, "af_xdp", "prog"))
    try:
        assert libbpf.test_run(fd, bytes(frame))[0] == 2, description  # XDP_PASS either way
    finally:
        os.close(fd)
    assert queues(lab)[0]["fallback"] - before == (1 if steered else 0), description
