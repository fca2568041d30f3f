# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two network namespaces joined by a veth pair, for real-kernel tests.

`dut` holds the interface under test, `peer` sends traffic to it. Names
carry a random suffix, addresses are in 198.19.0.0/16 (RFC 2544) and only
ever inside these namespaces, every traffic run is bounded in packets and
seconds, and close() removes namespaces, pins and state even after a failure.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import fcntl
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

SENDER = r"""
import socket, sys, time
dst, port, count, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic()
for i in range(count):
    s.sendto(b"ws%08d" % i, (dst, port))
    if rate:
        ahead = start + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
"""


@contextlib.contextmanager
def netns(name):
    """Run the block inside network namespace `name` (this thread only)."""
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open("/run/netns/%s" % name, os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns %s" % name)
        yield
    finally:
        _libc.setns(here, CLONE_NEWNET)
        os.close(here)
        os.close(there)


def tx_checksum_off(dev):
    """`ethtool -K dev tx off` (ETHTOOL_STXCSUM through SIOCETHTOOL) in the caller's namespace: a veth that sends
    to an XDP_TX balancer must checksum in software (the lab has no ethtool binary)."""
    value = array.array("I", [0x17, 0])  # struct ethtool_value {cmd ETHTOOL_STXCSUM, data 0}
    ifreq = struct.pack("16sP", dev.encode(), value.buffer_info()[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), 0x8946, ifreq)  # SIOCETHTOOL


def run(cmd, check=True):
    return subprocess.run(cmd, check=check, text=True, capture_output=True)


def _checksum(data):
    """The Internet checksum (RFC 1071) of a byte string."""
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


class Net:
    def __init__(self):
        self.suffix = "%05x" % random.randrange(1 << 20)
        self.dut, self.peer = "wsdut%s" % self.suffix, "wspeer%s" % self.suffix
        self.ifname, self.peer_if = "wsd%s" % self.suffix, "wsp%s" % self.suffix
        octet = random.randrange(1, 255)
        self.dut_ip, self.peer_ip = "198.19.%d.1" % octet, "198.19.%d.2" % octet
        self.state_dir = tempfile.mkdtemp(prefix="wsstate-")
        self.bpffs = "/sys/fs/bpf"
        self._up()

    def _up(self):
        if not os.path.ismount(self.bpffs):
            run(["mount", "-t", "bpf", "bpf", self.bpffs])
        run(["ip", "netns", "add", self.dut])
        run(["ip", "netns", "add", self.peer])
        run(["ip", "-n", self.dut, "link", "add", self.ifname, "type", "veth", "peer", "name", self.peer_if,
             "netns", self.peer])
        for ns, dev, ip in ((self.dut, self.ifname, self.dut_ip), (self.peer, self.peer_if, self.peer_ip)):
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        self.ping(1)  # resolve neighbours before any test counts packets

    @classmethod
    def existing(cls, dut_ns, dut_ip, peer_ns, peer_ip):
        """Traffic helpers between namespaces someone else made (the lab's); creates and removes nothing."""
        net = cls.__new__(cls)
        net.dut, net.dut_ip, net.peer, net.peer_ip = dut_ns, dut_ip, peer_ns, peer_ip
        return net

    @property
    def pin_root(self):
        return os.path.join(self.bpffs, "wirespeed", self.ifname)

    def close(self):
        shutil.rmtree(self.pin_root, ignore_errors=True)
        try:  # the shared parent goes too once no test uses it
            os.rmdir(os.path.dirname(self.pin_root))
        except OSError:
            pass
        run(["ip", "netns", "del", self.dut], check=False)
        run(["ip", "netns", "del", self.peer], check=False)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    # ---- traffic --------------------------------------------------------
    def ping(self, count=3):
        """ICMP echo requests from peer to dut, at most 1 s each: how many were answered. A raw socket, not the
        ping binary (a fresh Debian machine may not have one)."""
        with netns(self.peer):
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        ident, answered = random.randrange(1, 0xFFFF), 0
        try:
            for seq in range(count):
                head = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"wirespeed"
                sock.sendto(head[:2] + struct.pack("!H", _checksum(head)) + head[4:], (self.dut_ip, 0))
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

    def receiver(self, port):
        """A UDP socket bound inside dut; use with received()."""
        with netns(self.dut):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((self.dut_ip, port))
        sock.setblocking(False)
        return sock

    def start_sender(self, port, count, rate=0.0):
        """Start sending `count` datagrams from peer to dut:port, `rate` per second (0: as fast as possible)."""
        return subprocess.Popen(["ip", "netns", "exec", self.peer, sys.executable, "-c", SENDER, self.dut_ip,
                                 str(port), str(count), str(rate)])

    @staticmethod
    def drain(sock, idle=0.3, limit=30.0):
        """Count datagrams until none arrived for `idle` seconds (at most `limit` seconds)."""
        got, last, start = 0, time.monotonic(), time.monotonic()
        while time.monotonic() - last < idle and time.monotonic() - start < limit:
            try:
                sock.recv(2048)
                got += 1
                last = time.monotonic()
            except BlockingIOError:
                time.sleep(0.005)
        return got

    def udp(self, port, count=20):
        """Send `count` datagrams to dut:port; return how many arrived."""
        sock = self.receiver(port)
        try:
            sender = self.start_sender(port, count)
            sender.wait(timeout=30)
            return self.drain(sock)
        finally:
            sock.close()

    def xdp_prog(self):
        """`ip link` view of the XDP program on the dut interface (or '')."""
        out = run(["ip", "-n", self.dut, "-d", "link", "show", self.ifname]).stdout
        return next((line.strip() for line in out.splitlines() if "prog/xdp" in line), "")
