# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Example AF_XDP consumer for the wirespeed af_xdp role: Python standard library only.

It opens an AF_XDP socket on one RX queue of an interface (copy mode, which
every driver supports, veth included), inserts the socket into the XSKMAP the
af_xdp role pinned, counts the frames the steering program redirects to it
for at most --seconds or --frames, whichever comes first, and prints one JSON
summary line. The kernel removes the socket from the map when it closes.

    xsk_consumer.py --interface eth0 --queue 0 --seconds 10 --frames 1000

Needs CAP_NET_RAW (AF_XDP sockets) and write access to the pinned map (the
role's af_xdp_group and af_xdp_map_mode give it to a group): no root, no
CAP_BPF. It writes "ready" to stderr (and creates --ready-file) once its
socket is in the map.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import mmap
import os
import platform
import select
import socket
import struct
import sys
import time

AF_XDP = 44
SOL_XDP = 283
XDP_MMAP_OFFSETS, XDP_RX_RING, XDP_UMEM_REG = 1, 2, 4
XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_STATISTICS = 5, 6, 7
XDP_COPY = 1 << 1
XDP_PGOFF_RX_RING = 0
XDP_UMEM_PGOFF_FILL_RING = 0x100000000
BPF_MAP_UPDATE_ELEM, BPF_OBJ_GET = 2, 7
BPF_SYSCALL = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}

FRAME_SIZE = 2048  # the smallest chunk the kernel takes; a frame fits in one
FRAMES = 2048      # 4 MiB of UMEM: under the default RLIMIT_MEMLOCK (8 MiB)
RING = 2048        # entries of the fill and RX rings (a power of two): every frame fits in either
DESC = struct.Struct("QII")  # struct xdp_desc: addr, len, options

_libc = ctypes.CDLL(None, use_errno=True)


def fail(message: str) -> None:
    sys.stderr.write("xsk_consumer: %s\n" % message)
    sys.exit(1)


def bpf(cmd: int, attr: bytes) -> int:
    nr = BPF_SYSCALL.get(platform.machine())
    if nr is None:
        fail("no bpf() syscall number known for %s" % platform.machine())
    buf = ctypes.create_string_buffer(attr, 128)
    ret = _libc.syscall(nr, cmd, buf, 128)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def insert_socket(map_path: str, queue: int, sock_fd: int) -> None:
    """Put the socket at key `queue` of the pinned XSKMAP (BPF_OBJ_GET, then BPF_MAP_UPDATE_ELEM)."""
    path = ctypes.create_string_buffer(map_path.encode())
    try:
        map_fd = bpf(BPF_OBJ_GET, struct.pack("QII", ctypes.addressof(path), 0, 0))
    except OSError as exc:
        fail("cannot open the socket map %s (%s); is the af_xdp role applied on this interface, and may this "
             "user write it (af_xdp_group)?" % (map_path, exc.strerror))
    key, value = ctypes.c_uint32(queue), ctypes.c_uint32(sock_fd)
    try:
        bpf(BPF_MAP_UPDATE_ELEM, struct.pack("IIQQQ", map_fd, 0, ctypes.addressof(key), ctypes.addressof(value), 0))
    except OSError as exc:
        fail("cannot insert the socket at queue %d of %s (%s)" % (queue, map_path, exc.strerror))
    finally:
        os.close(map_fd)


class Ring:
    """A producer/consumer ring shared with the kernel (struct xdp_ring_offset: producer, consumer, desc, flags)."""

    def __init__(self, fd: int, offsets: tuple[int, int, int, int], entry: int, pgoff: int):
        self.producer, self.consumer, self.desc, _flags = offsets
        self.entry = entry
        self.mem = mmap.mmap(fd, self.desc + RING * entry, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE, offset=pgoff)

    def get(self, where: int) -> int:
        return struct.unpack_from("I", self.mem, where)[0]

    def put(self, where: int, value: int) -> None:
        struct.pack_into("I", self.mem, where, value & 0xFFFFFFFF)


def l4_of(frame: bytes) -> tuple[str, int | None]:
    """("udp"/"tcp"/..., destination port) of an Ethernet frame, for the summary."""
    ethertype = struct.unpack_from("!H", frame, 12)[0] if len(frame) >= 14 else 0
    if ethertype == 0x0800 and len(frame) >= 34:
        proto, l4 = frame[23], 14 + (frame[14] & 0x0F) * 4
    elif ethertype == 0x86DD and len(frame) >= 54:
        proto, l4 = frame[20], 54
    else:
        return "other", None
    name = {6: "tcp", 17: "udp"}.get(proto, str(proto))
    port = struct.unpack_from("!H", frame, l4 + 2)[0] if name in ("tcp", "udp") and len(frame) >= l4 + 4 else None
    return name, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", required=True)
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0, help="stop after this long (default 10)")
    parser.add_argument("--frames", type=int, default=1000, help="stop after this many frames (default 1000)")
    parser.add_argument("--ready-file", help="create this file once the socket is in the map")
    parser.add_argument("--map", help="the pinned XSKMAP (default /sys/fs/bpf/wirespeed/IFACE/af_xdp/maps/xsks)")
    args = parser.parse_args(argv)
    map_path = args.map or "/sys/fs/bpf/wirespeed/%s/af_xdp/maps/xsks" % args.interface
    try:
        ifindex = socket.if_nametoindex(args.interface)
    except OSError:
        fail("interface %s does not exist here" % args.interface)

    try:
        sock = socket.socket(AF_XDP, socket.SOCK_RAW, 0)
    except PermissionError:
        fail("opening an AF_XDP socket needs CAP_NET_RAW")
    fd = sock.fileno()
    umem = mmap.mmap(-1, FRAMES * FRAME_SIZE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    umem_addr = ctypes.addressof(ctypes.c_char.from_buffer(umem))
    # struct xdp_umem_reg in its first form (addr, len, chunk_size, headroom): every kernel takes it
    sock.setsockopt(SOL_XDP, XDP_UMEM_REG, struct.pack("QQII", umem_addr, FRAMES * FRAME_SIZE, FRAME_SIZE, 0))
    for opt in (XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING):
        sock.setsockopt(SOL_XDP, opt, RING)
    raw = sock.getsockopt(SOL_XDP, XDP_MMAP_OFFSETS, 128)
    rx_off, fill_off = struct.unpack_from("4Q", raw, 0), struct.unpack_from("4Q", raw, 64)
    rx = Ring(fd, rx_off, DESC.size, XDP_PGOFF_RX_RING)
    fill = Ring(fd, fill_off, 8, XDP_UMEM_PGOFF_FILL_RING)

    # hand the kernel every frame to receive into; each goes back to the fill ring once read
    for i in range(FRAMES):
        struct.pack_into("Q", fill.mem, fill.desc + i * 8, i * FRAME_SIZE)
    fill.put(fill.producer, FRAMES)

    addr = struct.pack("HHIII", AF_XDP, XDP_COPY, ifindex, args.queue, 0)
    if _libc.bind(fd, ctypes.c_char_p(addr), len(addr)) != 0:
        err = ctypes.get_errno()
        fail("cannot bind to %s queue %d (%s)%s" % (args.interface, args.queue, os.strerror(err),
             "; the interface has no such queue" if err == errno.EINVAL else ""))
    insert_socket(map_path, args.queue, fd)
    sys.stderr.write("ready\n")
    sys.stderr.flush()
    if args.ready_file:
        with open(args.ready_file, "w", encoding="ascii") as fh:
            fh.write("%d\n" % os.getpid())

    frames, octets, seen = 0, 0, {}
    start = time.monotonic()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while frames < args.frames:
        left = args.seconds - (time.monotonic() - start)
        if left <= 0:
            break
        cons, prod = rx.get(rx.consumer), rx.get(rx.producer)
        if cons == prod:
            poller.poll(min(left, 0.1) * 1000)
            continue
        fill_prod = fill.get(fill.producer)
        while cons != prod and frames < args.frames:
            frame_addr, length, _options = DESC.unpack_from(rx.mem, rx.desc + (cons % RING) * DESC.size)
            base = frame_addr - frame_addr % FRAME_SIZE
            proto, port = l4_of(umem[frame_addr:frame_addr + min(length, 128)])
            key = "%s/%s" % (proto, port) if port is not None else proto
            seen[key] = seen.get(key, 0) + 1
            frames, octets = frames + 1, octets + length
            struct.pack_into("Q", fill.mem, fill.desc + (fill_prod % RING) * 8, base)  # the frame goes back
            fill_prod += 1
            cons += 1
        fill.put(fill.producer, fill_prod)
        rx.put(rx.consumer, cons)
    elapsed = time.monotonic() - start
    raw = sock.getsockopt(SOL_XDP, XDP_STATISTICS, 48)  # struct xdp_statistics; older kernels give 24 bytes
    names = ("rx_dropped", "rx_invalid_descs", "tx_invalid_descs", "rx_ring_full", "rx_fill_ring_empty_descs",
             "tx_ring_empty_descs")
    stats = dict(zip(names, struct.unpack_from("%dQ" % (len(raw) // 8), raw)))
    sock.close()
    print(json.dumps({"interface": args.interface, "queue": args.queue, "frames": frames, "bytes": octets,
                      "seconds": round(elapsed, 3), "by_port": seen,
                      "kernel": stats}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
