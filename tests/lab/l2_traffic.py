# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded traffic between two network namespaces joined only by the l2_forwarder; prints JSON.

    l2_traffic.py NS_A NS_B IP_B [COUNT]

Run as root where both namespaces are named (under /run/netns), e.g. on a lab host. It flushes both
neighbour caches (so ARP must cross the forwarder first), sends COUNT ICMP echo requests from NS_A to IP_B
and counts the replies, then COUNT UDP datagrams from NS_A to IP_B and counts what NS_B received. Every
socket is made inside its namespace with setns on this thread only; nothing runs for more than a few
seconds.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import struct
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(ns, *args):
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open("/run/netns/%s" % ns, os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns %s" % ns)
        return socket.socket(*args)
    finally:
        _libc.setns(here, CLONE_NEWNET)
        os.close(here)
        os.close(there)


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(ns_a, ip_b, count):
    sock = socket_in(ns_a, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(1.0)
    ident, got = os.getpid() & 0xFFFF, 0
    for seq in range(count):
        body = b"wirespeed-l2"
        header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        sock.sendto(struct.pack("!BBHHH", 8, 0, _checksum(header + body), ident, seq) + body, (ip_b, 0))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                data = sock.recv(2048)
            except socket.timeout:
                break
            icmp = data[(data[0] & 0x0F) * 4:]
            if icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (ident, seq):
                got += 1
                break
    sock.close()
    return got


def udp(ns_a, ns_b, ip_b, count, port=40998):
    rx = socket_in(ns_b, socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((ip_b, port))
    rx.settimeout(1.0)
    tx = socket_in(ns_a, socket.AF_INET, socket.SOCK_DGRAM)
    tx.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK: a veth leaves the checksum to an offload XDP skips
    got = 0
    for i in range(count):
        tx.sendto(b"l2 %06d" % i, (ip_b, port))
        time.sleep(0.002)
    try:
        while got < count:
            rx.recv(2048)
            got += 1
    except socket.timeout:
        pass
    rx.close()
    tx.close()
    return got


def main(argv):
    ns_a, ns_b, ip_b = argv[:3]
    count = int(argv[3]) if len(argv) > 3 else 10
    for ns in (ns_a, ns_b):
        subprocess.run(["ip", "-n", ns, "neigh", "flush", "all"], check=False, capture_output=True)
    out = {"sent": count, "ping_replies": ping(ns_a, ip_b, count), "udp_received": udp(ns_a, ns_b, ip_b, count)}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
