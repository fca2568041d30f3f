# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic generators of the veth benches (veth_mpps.py, scaling.py, load_balancer.py): who offers the frames.

Two ways to offer frames to the receiving veth, both one sender thread per CPU, each pinned to its CPU:

  live       an XDP program that redirects every frame out of the generator's veth, run by BPF_PROG_TEST_RUN with
             BPF_F_TEST_XDP_LIVE_FRAMES (bench/bpf/live_redirect.bpf.c): the cheapest sender, a few ns per frame;
  af_packet  an AF_PACKET socket on the generator's veth with PACKET_QDISC_BYPASS, frames handed over by
             sendmmsg(2) in batches of 1024 (the same frames: one, or one per source of the `sources` pattern):
             a dearer sender (an sk_buff per frame), so the receiver's share of each figure is smaller.

Some kernels refuse live frames even to root (EPERM: seen on a lockdown kernel where plain test runs work); `pick()`
tries them once and falls back to af_packet, saying so. `WS_BENCH_GENERATOR=af_packet` (or `live`) forces one, so
the fallback can be run where live frames work. Either way the receive side runs in the softirq the sender raises
on its own CPU, so the sender thread's CPU time includes the receiver's work (veth_mpps.softirq_in_task_time()).
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1
SOL_PACKET, PACKET_QDISC_BYPASS = 263, 20
BATCH = 1024  # frames per sendmmsg call
KINDS = ("live", "af_packet")


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(_IoVec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


_libc = ctypes.CDLL(None, use_errno=True)


def with_sources(packet: bytes, first: str, count: int) -> list[bytes]:
    """`packet` (Ethernet + IPv4) once per source first, first + 1, ... (IPv4 header checksum kept right)."""
    out, base = [], int(ipaddress.IPv4Address(first))
    for i in range(count):
        frame = bytearray(packet)
        frame[26:30] = (base + i).to_bytes(4, "big")
        frame[24:26] = b"\0\0"
        words = sum(int.from_bytes(frame[o:o + 2], "big") for o in range(14, 34, 2))
        while words >> 16:
            words = (words & 0xFFFF) + (words >> 16)
        frame[24:26] = (~words & 0xFFFF).to_bytes(2, "big")
        out.append(bytes(frame))
    return out


class Generator:
    """Offers a frame shape to dut0 from gen0; send(cpus, frames) runs one sender thread per CPU at once and
    returns (frames the receiver counted, wall seconds, CPU seconds of the busiest sender thread)."""

    kind = ""

    def __init__(self, bench, name, packet, sources=0, first_source="10.77.0.0"):
        self.bench, self.name, self.packet = bench, name, packet
        self.sources, self.first_source = sources, first_source

    def _sender(self, cpu):
        """A callable(frames) that sends `frames` frames from the calling thread (pinned to cpu, in no netns)."""
        raise NotImplementedError

    def send(self, cpus, frames):
        from netlab import netns

        errors, used, barrier = [], [], threading.Barrier(len(cpus) + 1)

        def run(cpu):
            try:
                os.sched_setaffinity(0, {cpu})  # this thread only
                with netns(self.bench.gen):  # live frames redirect to an ifindex of this namespace
                    sender = self._sender(cpu)
                    try:
                        barrier.wait(60)
                        start = time.thread_time()
                        sender(frames)
                        used.append(time.thread_time() - start)
                    finally:
                        getattr(sender, "close", lambda: None)()
            except (OSError, threading.BrokenBarrierError) as exc:
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=run, args=(cpu,)) for cpu in cpus]
        for t in threads:
            t.start()
        before = self.bench.rx_packets()
        try:
            barrier.wait(60)
        except threading.BrokenBarrierError:
            pass
        start = time.perf_counter()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
        if errors:
            raise errors[0]
        return self.bench.rx_packets() - before, seconds, max([*used, 1e-9])


class LiveFrames(Generator):
    kind = "live"

    def __init__(self, bench, name, packet, sources=0, first_source="10.77.0.0"):
        super().__init__(bench, name, packet, sources, first_source)
        from programs import Loaded
        from veth_mpps import sh

        ifindex = int(sh("cat", "/sys/class/net/gen0/ifindex", ns=bench.gen))
        self.prog = Loaded(os.path.join(HERE, "bpf", "live_redirect.bpf.c"), os.path.join(bench.pins, "gen-" + name),
                           {"out_ifindex": ifindex, "sources": sources,
                            "first_source": int(ipaddress.IPv4Address(first_source))})

    def _sender(self, cpu):
        from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf

        data = ctypes.create_string_buffer(self.packet, len(self.packet))

        def sender(frames):
            opts = libbpf.TestRunOpts(sz=ctypes.sizeof(libbpf.TestRunOpts), data_in=ctypes.addressof(data),
                                      data_size_in=len(self.packet), repeat=frames,
                                      flags=BPF_F_TEST_XDP_LIVE_FRAMES, batch_size=64)
            libbpf.check(libbpf.lib().bpf_prog_test_run_opts(self.prog.obj.prog_fd, ctypes.byref(opts)),
                         "live frames")
        return sender


class AfPacket(Generator):
    kind = "af_packet"

    def _sender(self, cpu):
        frames_in = with_sources(self.packet, self.first_source, self.sources) if self.sources else [self.packet]
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: sends, receives nothing
        sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        sock.bind(("gen0", 0))
        bufs = [ctypes.create_string_buffer(f, len(f)) for f in frames_in]
        iovs = (_IoVec * BATCH)()
        msgs = (_MMsgHdr * BATCH)()
        for i in range(BATCH):
            iovs[i].base, iovs[i].len = ctypes.addressof(bufs[i % len(bufs)]), len(frames_in[i % len(bufs)])
            msgs[i].hdr.iov = ctypes.pointer(iovs[i])
            msgs[i].hdr.iovlen = 1
        fd = sock.fileno()

        def sender(frames):
            left = frames
            while left > 0:
                n = _libc.sendmmsg(fd, msgs, min(BATCH, left), 0)
                if n < 0:
                    err = ctypes.get_errno()
                    if err in (errno.ENOBUFS, errno.EAGAIN, errno.EINTR):
                        left -= 1  # the frame the kernel dropped counts as offered
                        continue
                    raise OSError(err, "sendmmsg on gen0: %s" % os.strerror(err))
                left -= n
        sender.close = sock.close
        return sender


def _live_refused(bench) -> str | None:
    """Why this kernel refuses live frames (one sent to try), or None when it takes them."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    packet = bytes(Ether() / IP(src=bench.src, dst=bench.dst) / UDP(sport=4000, dport=9) / (b"x" * 18))
    try:
        LiveFrames(bench, "probe", packet).send([min(os.sched_getaffinity(0))], 1)
    except OSError as exc:
        return str(exc)
    return None


def pick(bench, forced: str | None = None):
    """The generator class for this machine: `forced` or $WS_BENCH_GENERATOR when set, else live frames when the
    kernel takes them, else AF_PACKET. Prints which, and why when it fell back."""
    forced = forced or os.environ.get("WS_BENCH_GENERATOR") or None
    if forced:
        if forced not in KINDS:
            raise SystemExit("WS_BENCH_GENERATOR=%s: not a generator; use one of %s" % (forced, ", ".join(KINDS)))
        chosen, why = forced, "forced"
    else:
        refused = _live_refused(bench)
        chosen = "af_packet" if refused else "live"
        why = ("live frames refused here (%s)" % refused) if refused else "live frames work here"
    print("generator: %s (%s)" % (chosen, why), flush=True)
    return LiveFrames if chosen == "live" else AfPacket
