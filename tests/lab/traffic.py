# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded test traffic between the namespaces of a lab fleet; prints what arrived as JSON.

    traffic.py udp LABDIR HOST PORT [COUNT] [--from peer|peer2|controller]
                                                 datagrams to HOST:PORT; how many arrived
    traffic.py tcp LABDIR HOST PORT [COUNT] [--from controller|peer]
                                                 new TCP connections; how many were accepted
    traffic.py wireguard LABDIR HOST PORT        valid and malformed WireGuard-shaped datagrams
    traffic.py mirror LABDIR HOST PORT [COUNT]   datagrams to HOST:PORT, and copies seen on mon0p
    traffic.py egress LABDIR HOST PORT [COUNT] [--from peer|peer2]
                                                 1400-byte datagrams from HOST to the peer's address, at
                                                 once; how many arrived (egress_ratelimit)
    traffic.py dscp LABDIR HOST PORT [COUNT]     datagrams from HOST to the peer; the TOS bytes read there
    traffic.py newflows LABDIR HOST PORT [COUNT] one datagram from each of COUNT new sockets of the peer
                                                 to HOST:PORT; how many arrived (conn_limiter)
    traffic.py lb LABDIR HOST PORT [COUNT] --vip VIP --backends lab2,lab3
                                                 HOST balances VIP: one datagram from each of COUNT source
                                                 ports of the peer, which backend got it, and TCP
                                                 connections to VIP:PORT+1 answered from the VIP

Every run sends a fixed number of packets and waits at most a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
from lab import Lab  # noqa: E402
from netlab import Net, netns, tx_checksum_off  # noqa: E402

ETH_P_ALL = 0x0003


def _receiver(host, port):
    """A UDP socket bound on the host, inside its namespace."""
    return Net.existing(host["ns"], host["ip"], None, None).receiver(port)


def _send(ns, ip, port, payloads):
    with netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        for p in payloads:
            sock.sendto(p, (ip, port))
            time.sleep(0.001)


def udp(lab, host, port, count, source):
    sock = _receiver(host, port)
    try:
        if source == "controller":
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            with netns(lab.peer["ns"]):
                tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tx.bind((lab.peer["ip2"] if source == "peer2" else lab.peer["ip"], 0))
        with tx:
            for i in range(count):
                tx.sendto(b"udp%04d" % i, (host["ip"], port))
                time.sleep(0.001)
        return {"sent": count, "arrived": Net.drain(sock, idle=0.5, limit=5)}
    finally:
        sock.close()


def tcp(lab, host, port, count, source):
    """New connections, one after the other; a SYN that is dropped shows as a timeout."""
    accepted = 0
    for _attempt in range(count):
        ctx = netns(lab.peer["ns"]) if source == "peer" else None
        if ctx:
            with ctx:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(1.0)
        # one SYN per attempt: no retransmission can sneak a second one in within the timeout
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
        try:
            sock.connect((host["ip"], port))
            accepted += 1
        except OSError:
            pass
        finally:
            sock.close()
    return {"sent": count, "accepted": accepted}


def wg_message(kind, size, reserved=b"\0\0\0"):
    return bytes([kind]) + reserved + bytes(size - 4)


def wireguard(lab, host, port):
    valid = [wg_message(1, 148), wg_message(2, 92), wg_message(3, 64), wg_message(4, 32), wg_message(4, 1440)]
    malformed = [wg_message(9, 148), wg_message(1, 147), wg_message(4, 33), wg_message(2, 92, b"\1\0\0"),
                 b"GET / HTTP/1.1\r\n\r\n"]
    out = {}
    for name, payloads in (("valid", valid), ("malformed", malformed)):
        sock = _receiver(host, port)
        try:
            _send(lab.peer["ns"], host["ip"], port, payloads)
            out[name] = {"sent": len(payloads), "arrived": Net.drain(sock, idle=0.5, limit=5)}
        finally:
            sock.close()
    return out


def mirror(lab, host, port, count):
    with netns(host["ns"]):
        tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    tap.bind(("mon0p", 0))
    tap.settimeout(0.5)
    sock = _receiver(host, port)
    try:
        _send(lab.peer["ns"], host["ip"], port, [b"mirror%04d" % i for i in range(count)])
        arrived = Net.drain(sock, idle=0.5, limit=5)
        copies = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                frame = tap.recv(4096)
            except socket.timeout:
                break
            if len(frame) >= 38 and frame[12:14] == b"\x08\x00" and frame[23] == 17 \
                    and struct.unpack("!H", frame[36:38])[0] == port:
                copies += 1
        return {"sent": count, "arrived": arrived, "copies": copies}
    finally:
        sock.close()
        tap.close()


def _peer_receiver(lab, source, port):
    address = lab.peer["ip2"] if source == "peer2" else lab.peer["ip"]
    return address, Net.existing(lab.peer["ns"], address, None, None).receiver(port)


def egress(lab, host, port, count, source):
    address, sock = _peer_receiver(lab, source, port)
    try:
        with netns(host["ns"]):
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with tx:
            for _i in range(count):
                tx.sendto(b"e" * 1400, (address, port))
        return {"sent": count, "arrived": Net.drain(sock, idle=0.5, limit=5)}
    finally:
        sock.close()


def dscp(lab, host, port, count):
    address, sock = _peer_receiver(lab, "peer", port)
    sock.setsockopt(socket.IPPROTO_IP, 13, 1)  # IP_RECVTOS
    seen = []
    try:
        _send(host["ns"], address, port, [b"d%d" % i for i in range(count)])
        deadline = time.monotonic() + 3
        while len(seen) < count and time.monotonic() < deadline:
            try:
                _data, anc, _flags, _addr = sock.recvmsg(64, socket.CMSG_SPACE(1))
            except BlockingIOError:
                time.sleep(0.01)
                continue
            seen.extend(data[0] for level, kind, data in anc if level == socket.IPPROTO_IP and kind == 1)
        return {"sent": count, "tos": seen}
    finally:
        sock.close()


def newflows(lab, host, port, count):
    sock = _receiver(host, port)
    senders = []
    try:
        with netns(lab.peer["ns"]):
            senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _i in range(count)]
        for tx in senders:
            tx.sendto(b"n", (host["ip"], port))
        return {"sent": count, "arrived": Net.drain(sock, idle=0.5, limit=5)}
    finally:
        sock.close()
        for tx in senders:
            tx.close()


BARE_PASS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench", "bpf", "bare_pass.bpf.c")


def _sh(*cmd):
    import subprocess
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def lb(lab, host, port, count, vip, backends):
    """The veth facts first (XDP_PASS on the balancer's bridge port, TX checksum offload off on the peer, the VIP
    at the balancer's MAC in the peer's neighbour table), then UDP flows and TCP connections to the VIP."""
    import tempfile
    import threading
    obj = os.path.join(tempfile.mkdtemp(prefix="wslbpass"), "pass.o")
    _sh("clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/%s-linux-gnu" % os.uname().machine, "-c", BARE_PASS,
        "-o", obj)
    _sh("ip", "link", "set", "dev", host["veth"], "xdpdrv", "obj", obj, "sec", "xdp")
    servers, stop = {}, threading.Event()
    try:
        mac = _sh("ip", "netns", "exec", host["ns"], "cat", "/sys/class/net/eth0/address").strip()
        with netns(lab.peer["ns"]):
            tx_checksum_off("eth0")
        _sh("ip", "-n", lab.peer["ns"], "neigh", "replace", vip, "lladdr", mac, "dev", "eth0", "nud", "permanent")
        for name in backends:
            with netns(lab.host(name)["ns"]):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            u.bind((vip, port))
            u.setblocking(False)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind((vip, port + 1))
            t.listen(8)
            t.settimeout(0.2)
            servers[name] = (u, t)

        def accept(name, t):
            while not stop.is_set():
                try:
                    conn, _peer = t.accept()
                except OSError:
                    continue
                with conn:
                    conn.sendall(name.encode())
        for name, (_u, t) in servers.items():
            threading.Thread(target=accept, args=(name, t), daemon=True).start()
        with netns(lab.peer["ns"]):
            senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _i in range(count)]
        for i, tx in enumerate(senders):
            tx.bind((lab.peer["ip"], 30000 + i))
            tx.sendto(b"f", (vip, port))
            tx.close()
            time.sleep(0.0005)
        got, start, last = {}, time.monotonic(), time.monotonic()
        while time.monotonic() - last < 0.5 and time.monotonic() - start < 5:
            for name, (u, _t) in servers.items():
                while True:
                    try:
                        _data, src = u.recvfrom(16)
                    except BlockingIOError:
                        break
                    got[src[1]] = name
                    last = time.monotonic()
            time.sleep(0.005)
        answers = []
        for _i in range(6):
            with netns(lab.peer["ns"]):
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            with c:
                c.settimeout(2)
                try:
                    c.connect((vip, port + 1))
                    answers.append({"from": c.getpeername()[0], "backend": c.recv(16).decode()})
                except OSError as exc:
                    answers.append({"error": str(exc)})
        flows = {name: sum(1 for v in got.values() if v == name) for name in backends}
        return {"sent": count, "flows": flows, "by_port": {str(k): v for k, v in sorted(got.items())},
                "tcp": answers}
    finally:
        stop.set()
        for u, t in servers.values():
            u.close()
            t.close()
        _sh("ip", "link", "set", "dev", host["veth"], "xdpdrv", "off")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = ["udp", "tcp", "wireguard", "mirror", "egress", "dscp", "newflows", "lb"]
    parser.add_argument("kind", choices=kinds)
    parser.add_argument("labdir")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int, nargs="?", default=10)
    parser.add_argument("--from", dest="source", choices=["peer", "peer2", "controller"], default="peer",
                        help="the peer's first or second address, or the controller (root namespace)")
    parser.add_argument("--vip", help="lb: the service's VIP")
    parser.add_argument("--backends", default="", help="lb: the backend hosts, comma-separated")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 1000:
        parser.error("count must be 1 to 1000")
    lab = Lab(args.labdir)
    if not lab.meta:
        parser.error("no lab in %s" % args.labdir)
    host = lab.host(args.host)
    if args.kind == "udp":
        out = udp(lab, host, args.port, args.count, args.source)
    elif args.kind == "tcp":
        out = tcp(lab, host, args.port, args.count, args.source)
    elif args.kind == "wireguard":
        out = wireguard(lab, host, args.port)
    elif args.kind == "egress":
        out = egress(lab, host, args.port, args.count, args.source)
    elif args.kind == "dscp":
        out = dscp(lab, host, args.port, args.count)
    elif args.kind == "newflows":
        out = newflows(lab, host, args.port, args.count)
    elif args.kind == "lb":
        out = lb(lab, host, args.port, args.count, args.vip, args.backends.split(","))
    else:
        out = mirror(lab, host, args.port, args.count)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
