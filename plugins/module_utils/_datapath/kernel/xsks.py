"""Which queues of an XSKMAP hold an AF_XDP socket, and the AF_XDP sockets of this network namespace.

A socket in an XSKMAP cannot be read back from user space: the bpf() syscall
refuses lookups in XSKMAPs (-EOPNOTSUPP), and bpftool's dump fails the same
way. A BPF program may look one up, though, so in_map() loads a probe of
seventeen instructions that looks up the key the packet's first four bytes
name, and runs it once per queue with BPF_PROG_TEST_RUN. That answers what
steering depends on (is a socket in the map at that key) on every kernel,
and touches no counter.

Where the kernel has xdp_diag (CONFIG_XDP_SOCKETS_DIAG; not every kernel
does, this lab's does not), sockets() lists every AF_XDP socket with the
interface and queue it is bound to, its owner and its drop counters; pyroute2
has no xdp_diag, hence the netlink below (linux/xdp_diag.h). None when the
kernel lacks it.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import errno
import os
import socket
import struct

from ..errors import DatapathError
from . import libbpf

AF_XDP = 44
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
XDP_SHOW_INFO, XDP_SHOW_STATS = 1 << 0, 1 << 4
XDP_DIAG_INFO, XDP_DIAG_UID, XDP_DIAG_STATS = 1, 2, 9
NLMSG = struct.Struct("IHHII")
REQ = struct.Struct("BBHII8x")   # struct xdp_diag_req, cookie left 0
MSG = struct.Struct("BBHI8x")    # struct xdp_diag_msg
RTA = struct.Struct("HH")


def parse(data: bytes) -> tuple[list[dict] | None, bool]:
    """(sockets, done) from one read of netlink messages: [{inode, ifindex, queue, uid, rx_dropped, ...}]."""
    out, pos, done = [], 0, False
    while pos + NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = NLMSG.unpack_from(data, pos)
        if length < NLMSG.size:
            break
        body = data[pos + NLMSG.size:pos + length]
        pos += (length + 3) & ~3
        if kind == NLMSG_DONE:
            done = True
            break
        if kind == NLMSG_ERROR:
            code = -struct.unpack_from("i", body)[0] if len(body) >= 4 else errno.EIO
            if code in (errno.ENOENT, errno.EOPNOTSUPP):
                return None, True
            if code:
                raise DatapathError("the kernel refused to list AF_XDP sockets (%s); it needs xdp_diag "
                                    "(CONFIG_XDP_SOCKETS_DIAG)." % os.strerror(code))
            continue
        if kind != SOCK_DIAG_BY_FAMILY or len(body) < MSG.size:
            continue
        _family, _type, _pad, inode = MSG.unpack_from(body)
        sock = {"inode": inode, "ifindex": None, "queue": None, "uid": None}
        apos = MSG.size
        while apos + RTA.size <= len(body):
            alen, atype = RTA.unpack_from(body, apos)
            if alen < RTA.size:
                break
            value = body[apos + RTA.size:apos + alen]
            if atype == XDP_DIAG_INFO and len(value) >= 8:
                sock["ifindex"], sock["queue"] = struct.unpack_from("II", value)
            elif atype == XDP_DIAG_UID and len(value) >= 4:
                sock["uid"] = struct.unpack_from("I", value)[0]
            elif atype == XDP_DIAG_STATS and len(value) >= 48:
                names = ("rx_dropped", "rx_invalid", "rx_full", "fill_ring_empty", "tx_invalid", "tx_ring_empty")
                sock.update(zip(names, struct.unpack_from("6Q", value)))
            apos += (alen + 3) & ~3
        out.append(sock)
    return out, done


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


def probe_insns(map_fd: int) -> bytes:
    """XDP: key = the packet's first 4 bytes; return 1 when the XSKMAP holds a socket at key, else 0."""
    return b"".join([
        _insn(0x61, 2, 1, 0),          # r2 = ctx->data
        _insn(0x61, 3, 1, 4),          # r3 = ctx->data_end
        _insn(0xbf, 4, 2),             # r4 = r2
        _insn(0x07, 4, imm=4),         # r4 += 4
        _insn(0x2d, 4, 3, off=10),     # if r4 > r3 goto absent
        _insn(0x61, 5, 2, 0),          # r5 = *(u32 *)data
        _insn(0x63, 10, 5, -4),        # *(u32 *)(fp - 4) = r5
        _insn(0xbf, 2, 10),            # r2 = fp
        _insn(0x07, 2, imm=-4),        # r2 += -4
        _insn(0x18, 1, 1, imm=map_fd),  # r1 = the map (BPF_PSEUDO_MAP_FD)
        _insn(0),
        _insn(0x85, imm=1),            # r0 = bpf_map_lookup_elem(r1, r2)
        _insn(0x15, 0, off=2, imm=0),  # if r0 == 0 goto absent
        _insn(0xb7, 0, imm=1),         # r0 = 1
        _insn(0x95),                   # exit
        _insn(0xb7, 0, imm=0),         # absent: r0 = 0
        _insn(0x95),                   # exit
    ])


def in_map(map_path: str, queues: range | list[int]) -> dict[int, bool]:
    """{queue: a socket is at that key of the pinned XSKMAP}."""
    map_fd = libbpf.obj_get(map_path)
    try:
        prog_fd = libbpf.prog_load(libbpf.PROG_TYPE_XDP, "ws_xsk_probe", probe_insns(map_fd))
    except OSError as exc:
        raise DatapathError("cannot read which queues of %s hold a socket: the probe program did not load (%s)."
                            % (map_path, exc.strerror)) from exc
    finally:
        os.close(map_fd)
    try:
        return {q: libbpf.test_run(prog_fd, struct.pack("I", q) + bytes(60))[0] == 1 for q in queues}
    finally:
        os.close(prog_fd)


def sockets() -> list[dict] | None:
    """Every AF_XDP socket of this network namespace, bound or not (an unbound one has ifindex 0); None when the
    kernel has no xdp_diag."""
    try:
        nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    except OSError as exc:
        raise DatapathError("cannot open a sock_diag netlink socket to list AF_XDP sockets (%s)."
                            % exc.strerror) from exc
    try:
        nl.bind((0, 0))
        req = REQ.pack(AF_XDP, 0, 0, 0, XDP_SHOW_INFO | XDP_SHOW_STATS)
        nl.send(NLMSG.pack(NLMSG.size + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req)
        out, done = [], False
        while not done:
            data = nl.recv(65536)
            if not data:
                break
            got, done = parse(data)
            if got is None:
                return None
            out += got
        return out
    finally:
        nl.close()


def bound(ifindex: int, count: int) -> dict[int, list[dict]] | None:
    """{queue: [sockets bound there]} for queues 0..count-1 of an interface (an empty list: no socket); None
    without xdp_diag."""
    found = sockets()
    if found is None:
        return None
    out: dict[int, list[dict]] = {q: [] for q in range(count)}
    for sock in found:
        if sock["ifindex"] == ifindex and sock["queue"] is not None:
            out.setdefault(sock["queue"], []).append(sock)
    return out
