"""The flow export agent: reads files/bpf/flow_export.bpf.c's pinned maps and writes one JSON line per flow.

The kernel aggregates flows in a per-CPU hash (`flows`); this agent sums the
CPUs, exports a flow when it has been idle or active too long (and deletes it,
so the table keeps room), reads the ring buffer (`flow_events`) where the
program puts the flows the full table could not hold, and keeps count of
everything (`flow_stats`: full-table misses, failed reservations, records
sent, packets left out by sampling). Output is JSON lines, rotated by size.
It runs in the host tool (`wirespeed.pyz flows`), from a systemd unit.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import struct
import time

from ..errors import DatapathError
from ..kernel import libbpf
from ..kernel.maps import PinnedMap, percpu_sum
from . import units

KEY = struct.Struct("=16s16sHHBB2x")  # saddr, daddr, sport, dport (network order), proto, family
VALUE = struct.Struct("=QQQQB7x")  # packets, bytes, first_ns, last_ns, tcp_flags
RECORD = struct.Struct("=II")  # after key and value: sample_rate, kind
STATS = ("table_full", "ringbuf_failed", "records_sent", "sampled_out")
KERNEL_CLOCK = 6  # CLOCK_MONOTONIC_COARSE (linux/time.h), what bpf_ktime_get_coarse_ns() reads
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"}


def decode_key(raw: bytes) -> dict:
    saddr, daddr, sport, dport, proto, family = KEY.unpack_from(raw)
    size = 4 if family == 4 else 16
    return {"src": str(ipaddress.ip_address(saddr[:size])), "dst": str(ipaddress.ip_address(daddr[:size])),
            "sport": int.from_bytes(struct.pack("=H", sport), "big"),
            "dport": int.from_bytes(struct.pack("=H", dport), "big"),
            "proto": PROTOCOLS.get(proto, str(proto)), "family": family}


def sum_cpus(raw: bytes, stride: int, ncpu: int) -> dict:
    """One flow's per-CPU values as one: counts added, first seen the earliest, last seen the latest, flags ORed."""
    packets = size = flags = last = 0
    first = None
    for cpu in range(ncpu):
        p, b, f, la, fl = VALUE.unpack_from(raw, cpu * stride)
        if not p:
            continue
        packets, size, flags, last = packets + p, size + b, flags | fl, max(last, la)
        first = f if first is None or (f and f < first) else first
    return {"packets": packets, "bytes": size, "first_ns": first or last, "last_ns": last, "tcp_flags": flags}


class JsonLines:
    """Append-only JSON lines, rotated when a write takes the file past max_bytes (path.1 ... path.<backups>)."""

    def __init__(self, path: str, max_bytes: int = 64 << 20, backups: int = 5):
        if max_bytes < 4096:
            raise DatapathError("max_bytes %r is too small for flow records; give 4096 or more." % max_bytes)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise DatapathError("output %s is not in a writable directory on this host; create %s or set the "
                                "output elsewhere." % (path, directory))
        self.path, self.max_bytes, self.backups, self.rotations = path, max_bytes, backups, 0

    def write(self, records: list[dict]) -> None:
        if not records:
            return
        with open(self.path, "a") as fh:
            for record in records:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
        if os.path.getsize(self.path) > self.max_bytes:
            self.rotate()

    def rotate(self) -> None:
        for n in range(self.backups - 1, 0, -1):
            if os.path.exists("%s.%d" % (self.path, n)):
                os.replace("%s.%d" % (self.path, n), "%s.%d" % (self.path, n + 1))
        os.replace(self.path, self.path + ".1")
        self.rotations += 1


# (element id, length): sourceIPv{4,6}Address, destinationIPv{4,6}Address, then sourceTransportPort,
# destinationTransportPort, protocolIdentifier, tcpControlBits, packetDeltaCount, octetDeltaCount,
# flowStartMilliseconds, flowEndMilliseconds, flowEndReason, samplingPacketInterval
IPFIX_TEMPLATES = {4: (256, ((8, 4), (12, 4))), 6: (257, ((27, 16), (28, 16)))}
IPFIX_COMMON = ((7, 2), (11, 2), (4, 1), (6, 2), (2, 8), (1, 8), (152, 8), (153, 8), (136, 1), (305, 4))
IPFIX_END_REASONS = {"idle": 1, "active": 2, "stop": 4, "overflow": 5}  # timeouts, forced end, lack of resources


class Ipfix:
    """IPFIX (RFC 7011) over UDP: two templates (IPv4, IPv6 flows) of standard information elements (RFC 7012),
    sent with every message as UDP needs, then data records; at most 1400 bytes a message."""

    TEMPLATES = IPFIX_TEMPLATES
    COMMON = IPFIX_COMMON
    END_REASONS = IPFIX_END_REASONS
    MTU = 1400

    def __init__(self, collector: str, domain: int = 1):
        self.address = parse_collector(collector)
        self.domain, self.sequence, self.messages = domain, 0, 0
        self.sock = socket.socket(socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET, socket.SOCK_DGRAM)

    def close(self) -> None:
        self.sock.close()

    def _template_set(self) -> bytes:
        body = b""
        for template_id, addresses in self.TEMPLATES.values():
            fields = addresses + self.COMMON
            body += struct.pack("!HH", template_id, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields)
        return struct.pack("!HH", 2, 4 + len(body)) + body

    def _record(self, r: dict) -> bytes:
        proto = {v: k for k, v in PROTOCOLS.items()}.get(r["proto"], int(r["proto"]) if r["proto"].isdigit() else 0)
        return (ipaddress.ip_address(r["src"]).packed + ipaddress.ip_address(r["dst"]).packed
                + struct.pack("!HHBHQQQQBI", r["sport"], r["dport"], proto, r["tcp_flags"], r["packets"], r["bytes"],
                              int(r["first"] * 1000), int(r["last"] * 1000), self.END_REASONS.get(r["end"], 4),
                              r["sample_rate"]))

    def send(self, records: list[dict]) -> None:
        templates = self._template_set()
        pending = {}
        for r in records:
            pending.setdefault(r["family"], []).append(self._record(r))
        for family, rows in sorted(pending.items()):
            template_id = self.TEMPLATES[family][0]
            room = max(1, (self.MTU - 16 - len(templates) - 4) // len(rows[0]))
            for start in range(0, len(rows), room):
                chunk = rows[start:start + room]
                data = struct.pack("!HH", template_id, 4 + sum(len(c) for c in chunk)) + b"".join(chunk)
                body = templates + data
                header = struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), self.sequence, self.domain)
                self.sock.sendto(header + body, self.address)
                self.sequence += len(chunk)
                self.messages += 1


def parse_collector(text: str) -> tuple[str, int]:
    """'192.0.2.9:4739' or '[2001:db8::9]:4739' -> (address, port); one sentence naming a bad one."""
    host, _sep, port = (text or "").rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = str(ipaddress.ip_address(host))
        number = int(port)
    except ValueError:
        raise DatapathError("ipfix_collector %r does not parse; give address:port, such as 192.0.2.9:4739 or "
                            "[2001:db8::9]:4739." % (text,)) from None
    if not 1 <= number <= 65535:
        raise DatapathError("ipfix_collector %r has port %d; give a port from 1 to 65535." % (text, number))
    return address, number


class Exporter:
    """One flow_export program's maps (its pin directory's maps/) read into an output."""

    def __init__(self, maps_dir: str, output: JsonLines, *, idle: float = 15.0, active: float = 60.0,
                 sample_rate: int = 1, labels: dict | None = None, ipfix: Ipfix | None = None):
        for name in ("flows", "flow_events", "flow_stats"):
            if not os.path.exists(os.path.join(maps_dir, name)):
                raise DatapathError("no flow_export map %s is pinned in %s; deploy the flow_export program first."
                                    % (name, maps_dir))
        self.flows = PinnedMap(os.path.join(maps_dir, "flows"))
        self.stats_map = PinnedMap(os.path.join(maps_dir, "flow_stats"))
        self.events_fd = libbpf.obj_get(os.path.join(maps_dir, "flow_events"))
        self.output, self.idle_ns, self.active_ns = output, int(idle * 1e9), int(active * 1e9)
        self.sample_rate, self.labels, self.ipfix = sample_rate, dict(labels or {}), ipfix
        self.counters = {"flows_exported": 0, "overflow_records": 0, "lines_written": 0}
        self._pending = []
        self.ring = libbpf.RingBuffer(self.events_fd, self._on_record)

    def close(self) -> None:
        self.ring.close()
        if self.ipfix is not None:
            self.ipfix.close()
        os.close(self.events_fd)
        self.flows.close()
        self.stats_map.close()

    @staticmethod
    def _wall(ns: int, now_mono: float, now_wall: float) -> float:
        return round(now_wall - (now_mono - ns / 1e9), 6)

    def _line(self, key: dict, value: dict, reason: str, sample_rate: int) -> dict:
        now_mono, now_wall = time.clock_gettime(KERNEL_CLOCK), time.time()
        return dict(self.labels, **key, packets=value["packets"], bytes=value["bytes"],
                    first=self._wall(value["first_ns"], now_mono, now_wall),
                    last=self._wall(value["last_ns"], now_mono, now_wall),
                    tcp_flags=value["tcp_flags"], sample_rate=sample_rate, end=reason)

    def _on_record(self, raw: bytes) -> None:
        key = decode_key(raw[:KEY.size])
        value = sum_cpus(raw[KEY.size:KEY.size + VALUE.size], VALUE.size, 1)
        sample_rate, _kind = RECORD.unpack_from(raw, KEY.size + VALUE.size)
        self._pending.append(self._line(key, value, "overflow", sample_rate))
        self.counters["overflow_records"] += 1

    def poll(self, timeout_ms: int = 0) -> int:
        """Read the ring buffer (waiting up to timeout_ms) and write what it held."""
        count = self.ring.poll(timeout_ms)
        self._flush()
        return count

    def sweep(self, force: bool = False) -> int:
        """Export and delete the flows idle for `idle` or active for `active` seconds (every flow with force)."""
        now = int(time.clock_gettime(KERNEL_CLOCK) * 1e9)
        done = []
        for raw_key, raw in self.flows.dump().items():
            value = sum_cpus(raw, self.flows.stride, self.flows.ncpu)
            if not value["packets"]:
                continue
            idle = now - value["last_ns"] >= self.idle_ns
            active = now - value["first_ns"] >= self.active_ns
            if force or idle or active:
                reason = "stop" if force and not (idle or active) else ("idle" if idle else "active")
                self._pending.append(self._line(decode_key(raw_key), value, reason, self.sample_rate))
                done.append(raw_key)
        if done:
            self.flows.delete(done)
        self.counters["flows_exported"] += len(done)
        self._flush()
        return len(done)

    def _flush(self) -> None:
        self.output.write(self._pending)
        if self.ipfix is not None and self._pending:
            self.ipfix.send(self._pending)
        self.counters["lines_written"] += len(self._pending)
        self._pending = []

    def stats(self) -> dict:
        """The kernel's counters (summed over CPUs) and the agent's own."""
        out = dict(self.counters, rotations=self.output.rotations)
        if self.ipfix is not None:
            out.update(ipfix_messages=self.ipfix.messages, ipfix_records=self.ipfix.sequence)
        stride = self.stats_map.stride
        for index, name in enumerate(STATS):
            raw = libbpf.map_lookup(self.stats_map.fd, struct.pack("I", index), self.stats_map.slot_size) or b""
            out[name] = percpu_sum(raw, stride)
        return out


def run(maps_dir: str, output: str, *, idle: float = 15.0, active: float = 60.0, max_bytes: int = 64 << 20,
        backups: int = 5, sample_rate: int = 1, labels: dict | None = None, stats_file: str | None = None,
        seconds: float | None = None, interval: float = 1.0, ipfix: str | None = None) -> dict:
    """The agent's loop: poll the ring buffer, sweep every `interval`, write stats_file (JSON, for facts) after
    each sweep; until SIGTERM/SIGINT (or `seconds`), then export every flow left and return the stats."""
    exporter = Exporter(maps_dir, JsonLines(output, max_bytes, backups), idle=idle, active=active,
                        sample_rate=sample_rate, labels=labels, ipfix=Ipfix(ipfix) if ipfix else None)
    stop = []
    previous = {s: signal.signal(s, lambda *_a: stop.append(True)) for s in (signal.SIGTERM, signal.SIGINT)}
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while not stop and (deadline is None or time.monotonic() < deadline):
            exporter.poll(int(interval * 1000))
            exporter.sweep()
            _write_stats(stats_file, exporter.stats())
        exporter.poll(0)
        exporter.sweep(force=True)
        final = exporter.stats()
        _write_stats(stats_file, final)
        return final
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        exporter.close()


def _write_stats(path: str | None, stats: dict) -> None:
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(dict(stats, at=time.time()), fh, sort_keys=True)
    os.replace(tmp, path)


# the agent as a systemd service -----------------------------------------------------------------------------
def unit_name(interface: str) -> str:
    return "wirespeed-flow-export-%s.service" % interface


def agent_argv(*, python: str, tool_file: str, interface: str, name: str, output: str, state_dir: str,
               bpffs_path: str, idle: float, active: float, max_bytes: int, backups: int, sample_rate: int,
               ipfix: str | None = None) -> list:
    """The command line of the agent of one interface (what its unit runs)."""
    return [python, tool_file, "flows", "--interface", interface, "--name", name, "--output", output,
            "--state-dir", state_dir, "--bpffs", bpffs_path, "--idle", "%g" % idle, "--active", "%g" % active,
            "--max-bytes", str(max_bytes), "--backups", str(backups), "--sample-rate", str(sample_rate)] + \
        (["--ipfix", ipfix] if ipfix else [])


def stats_path(state_dir: str, interface: str) -> str:
    return os.path.join(state_dir, "flow-export-%s.json" % interface)


def unit_text(argv: list) -> str:
    return "\n".join([
        "# Written by wirespeed.datapath (role flow_export); changes here are overwritten.",
        "[Unit]", "Description=wirespeed flow export agent (%s)" % argv[argv.index("--interface") + 1],
        "Documentation=https://github.com/wirespeed/datapath",
        "After=wirespeed-restore.service local-fs.target", "",
        "[Service]", "Type=simple", "ExecStart=%s" % units.exec_line(argv),
        "Restart=on-failure", "RestartSec=2", "Nice=5", "", "[Install]", "WantedBy=multi-user.target", ""])


def install_agent(argv: list, interface: str, unit_dir: str, check_mode: bool = False) -> dict:
    """The enabled unit of one interface's agent; {changed, unit}."""
    changed = units.place_units(unit_dir, {unit_name(interface): unit_text(argv)},
                                (unit_name(interface), "multi-user.target"), what="flow export unit",
                                check_mode=check_mode)
    return {"changed": changed, "unit": os.path.join(unit_dir, unit_name(interface))}


def uninstall_agent(interface: str, unit_dir: str, check_mode: bool = False) -> dict:
    return units.remove_files([os.path.join(unit_dir, "multi-user.target.wants", unit_name(interface)),
                               os.path.join(unit_dir, unit_name(interface))], check_mode)


def read_stats(state_dir: str, interface: str) -> dict | None:
    """What the agent of an interface last wrote about itself, or None."""
    try:
        with open(stats_path(state_dir, interface)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def check_settings(*, output: str, idle: float, active: float, max_bytes: int, backups: int,
                   sample_rate: int, ipfix: str | None = None) -> None:
    """Refuse settings the agent cannot run with, one sentence naming the option, before anything changes."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 1 <= sample_rate <= 1 << 20:
        raise DatapathError("sample_rate %r must be a whole number from 1 (every packet) to 1048576." % (sample_rate,))
    if not 0 < idle <= 3600:
        raise DatapathError("idle_timeout %r must be more than 0 and at most 3600 seconds." % (idle,))
    if not idle <= active <= 86400:
        raise DatapathError("active_timeout %r must be at least idle_timeout (%g) and at most 86400 seconds."
                            % (active, idle))
    if not 1 <= backups <= 100:
        raise DatapathError("backups %r must be from 1 to 100." % (backups,))
    if ipfix:
        parse_collector(ipfix)
    if max_bytes < 4096:
        raise DatapathError("max_bytes %r is too small for flow records; give 4096 or more." % max_bytes)
    output_dir(output)


def output_dir(output: str, create: bool = False) -> bool:
    """The output's directory exists and is writable, or can be made in one step (its parent is a writable
    directory, as /var/log is for the default /var/log/wirespeed); with create, make it (0750). Whether it was
    (or would be) made."""
    directory = os.path.dirname(os.path.abspath(output))
    parent = directory if os.path.exists(directory) else os.path.dirname(directory)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise DatapathError("output %s is not in a writable directory on this host; create %s or set the output "
                            "elsewhere." % (output, directory))
    if parent == directory:
        return False
    if create:
        os.makedirs(directory, mode=0o750, exist_ok=True)
    return True
