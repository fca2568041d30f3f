"""The datapath's counters for Prometheus: node_exporter's textfile collector format, written atomically.

collect() reads what datapath_info reads (info.gather) plus the fill level of
our pinned hash and LPM maps; render() turns that into the text exposition
format (pure, unit-tested); write() puts it in place with a temporary file and
a rename, so node_exporter never reads half a file. The host tool runs the
same code (`wirespeed.pyz metrics --dir D`) from a systemd timer.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import sys
import tempfile
import time

from .. import info
from ..errors import DatapathError
from ..kernel import bpffs
from ..kernel.maps import HASH, LPM_TRIE, LRU_HASH, LRU_PERCPU_HASH, PERCPU_HASH, PinnedMap
from ..record.store import DEFAULT_STATE_DIR
from . import flows, tool, units

DEFAULT_DIR = "/var/lib/prometheus/node-exporter"
FILE_NAME = "wirespeed.prom"
FILLABLE = {HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH, LPM_TRIE}  # arrays always hold max_entries
SERVICE = "wirespeed-metrics.service"
TIMER = "wirespeed-metrics.timer"
TIMER_WANTED_BY = "timers.target"
MIN_INTERVAL, MAX_INTERVAL = 5, 3600

FLOW_COUNTERS = ("flows_exported", "overflow_records", "table_full", "ringbuf_failed", "sampled_out")
# name: (type, help)
FAMILIES = {
    "wirespeed_packets_total": ("counter", "Packets that left a wirespeed program, by verdict (action) and, for "
                                "drops, by reason; reason none is a drop without a reason."),
    "wirespeed_bytes_total": ("counter", "Bytes that left a wirespeed program, by action and drop reason."),
    "wirespeed_map_entries": ("gauge", "Entries in a pinned hash or LPM map of a wirespeed program."),
    "wirespeed_map_max_entries": ("gauge", "Capacity of a pinned hash or LPM map of a wirespeed program."),
    "wirespeed_program_xlated_instructions": ("gauge", "BPF instructions of the program as the kernel runs it."),
    "wirespeed_program_runs_total": ("counter", "Runs of a program the kernel enters itself (for XDP the chain "
                                     "root: every packet); only while sysctl kernel.bpf_stats_enabled=1."),
    "wirespeed_program_run_seconds_total": ("counter", "Time spent in those runs; only while "
                                            "sysctl kernel.bpf_stats_enabled=1."),
    "wirespeed_xdp_generic_unexpected": ("gauge", "1 when XDP runs in generic mode on an interface whose driver "
                                         "runs it natively."),
    "wirespeed_problems": ("gauge", "Problems datapath_info would report (XDP_ABORTED packets, unexpected generic "
                           "mode); 0 is healthy."),
    "wirespeed_flow_export_flows_exported_total": ("counter", "Flows the flow export agent wrote out."),
    "wirespeed_flow_export_overflow_records_total": ("counter", "Ring buffer records the agent read: packets of "
                                                     "flows the full table could not hold."),
    "wirespeed_flow_export_table_full_total": ("counter", "Packets that found the flow table full."),
    "wirespeed_flow_export_ringbuf_failed_total": ("counter", "Of those, packets lost because the ring buffer was "
                                                   "full too (bpf_ringbuf_reserve failed)."),
    "wirespeed_flow_export_sampled_out_total": ("counter", "Packets left out by the flow export's sampling."),
    "wirespeed_metrics_timestamp_seconds": ("gauge", "When these metrics were read, in seconds since the epoch."),
}


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, labels: dict, value) -> str:
    text = ",".join('%s="%s"' % (k, _escape(v)) for k, v in labels.items())
    return "%s{%s} %s" % (name, text, value) if text else "%s %s" % (name, value)


def _reason_split(program: dict, action: str, what: str) -> list[tuple[str, int]]:
    """[(reason, count)] of one action: one entry with reason '' except drops of a program that counts reasons,
    split by reason, the drops counted without one (and any read skew) under 'none'."""
    total = ((program.get("counters") or {}).get(action) or {}).get(what, 0)
    reasons = program.get("drop_reasons")
    if action != "drop" or not reasons:
        return [("", total)]
    split = [(r, c[what]) for r, c in sorted(reasons.items()) if r != "none"]
    return [("none", max(0, total - sum(c for _r, c in split)))] + split


def render(datapath: dict, fill: dict, problems: list[str], now: float, flow_stats: dict | None = None) -> str:
    """The text exposition format of gather()'s answer, fill {(interface, program, map): (entries, max)}, the
    problems and flow_stats {interface: what its flow export agent last wrote}: every family with HELP and TYPE,
    samples sorted, label values escaped. Pure."""
    samples = {name: [] for name in FAMILIES}
    for ifname, iface in sorted(datapath.items()):
        for name, program in sorted((iface.get("programs") or {}).items()):
            where = {"interface": ifname, "hook": program.get("hook") or "", "program": name}
            for action in info.XDP_ACTIONS if program.get("counters") else ():
                for what, family in (("packets", "wirespeed_packets_total"), ("bytes", "wirespeed_bytes_total")):
                    for reason, count in _reason_split(program, action, what):
                        samples[family].append(_sample(family, dict(where, action=action, reason=reason), count))
            health = program.get("health") or {}
            if health.get("xlated_insns") is not None:
                samples["wirespeed_program_xlated_instructions"].append(
                    _sample("wirespeed_program_xlated_instructions", where, health["xlated_insns"]))
            _runs(samples, where, health)
        root = iface.get("xdp_prog")
        if root and iface.get("managed"):
            _runs(samples, {"interface": ifname, "hook": "xdp", "program": root["name"]}, iface.get("xdp_health") or {})
        if iface.get("xdp_mode"):
            samples["wirespeed_xdp_generic_unexpected"].append(
                _sample("wirespeed_xdp_generic_unexpected", {"interface": ifname},
                        int(bool(iface.get("xdp_generic_unexpected")))))
    for (ifname, program, map_name), (entries, max_entries) in sorted(fill.items()):
        labels = {"interface": ifname, "program": program, "map": map_name}
        samples["wirespeed_map_entries"].append(_sample("wirespeed_map_entries", labels, entries))
        samples["wirespeed_map_max_entries"].append(_sample("wirespeed_map_max_entries", labels, max_entries))
    for ifname, stats in sorted((flow_stats or {}).items()):
        for counter in FLOW_COUNTERS:
            family = "wirespeed_flow_export_%s_total" % counter
            samples[family].append(_sample(family, {"interface": ifname}, int(stats.get(counter) or 0)))
    samples["wirespeed_problems"].append(_sample("wirespeed_problems", {}, len(problems)))
    samples["wirespeed_metrics_timestamp_seconds"].append(
        _sample("wirespeed_metrics_timestamp_seconds", {}, "%.3f" % now))
    lines = []
    for name, (kind, help_) in FAMILIES.items():
        lines += ["# HELP %s %s" % (name, help_), "# TYPE %s %s" % (name, kind)] + samples[name]
    return "\n".join(lines) + "\n"


def _runs(samples: dict, where: dict, health: dict) -> None:
    if health.get("run_cnt") is None:
        return
    samples["wirespeed_program_runs_total"].append(_sample("wirespeed_program_runs_total", where, health["run_cnt"]))
    seconds = (health.get("avg_ns") or 0) * health["run_cnt"] / 1e9
    samples["wirespeed_program_run_seconds_total"].append(
        _sample("wirespeed_program_run_seconds_total", where, "%.9f" % seconds))


def map_fill(datapath: dict) -> dict:
    """{(interface, program, map): (entries, max_entries)} of our programs' pinned hash and LPM maps."""
    out = {}
    for ifname, iface in datapath.items():
        for name, program in (iface.get("programs") or {}).items():
            for map_name, path in (program.get("maps") or {}).items():
                try:
                    with PinnedMap(path) as pinned:
                        if pinned.type in FILLABLE:
                            out[(ifname, name, map_name)] = (len(pinned.dump()), pinned.max_entries)
                except (OSError, DatapathError):
                    continue  # replaced or removed while we read: the next refresh has it
    return out


def collect(state_dir: str = DEFAULT_STATE_DIR, bpffs_path: str = bpffs.DEFAULT_BPFFS,
            generic_ok: list[str] | tuple = ()) -> str:
    """The host's metrics, as text."""
    datapath = {n: i for n, i in info.gather(None, bpffs_path, state_dir).items() if i["programs"] or i["xdp_prog"]}
    found = info.problems(datapath, info.native_support(), generic_ok)
    flow_stats = {n: flows.read_stats(state_dir, n) for n in datapath}
    return render(datapath, map_fill(datapath), found, time.time(), {n: s for n, s in flow_stats.items() if s})


def check_dir(directory: str, variable: str = "dir") -> None:
    """Refuse a directory the metrics cannot be written to, before anything changes."""
    if not os.path.isdir(directory):
        raise DatapathError("%s %s is not a directory on this host; create node_exporter's textfile directory "
                            "or set %s to it." % (variable, directory, variable))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DatapathError("%s %s is not writable on this host; set %s to a directory root can write."
                            % (variable, directory, variable))


def write(directory: str, text: str, variable: str = "dir") -> str:
    """Put text at <directory>/wirespeed.prom atomically (a temporary file beside it, fsync, rename)."""
    check_dir(directory, variable)
    path = os.path.join(directory, FILE_NAME)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".wirespeed.prom.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise DatapathError("the metrics cannot be written to %s (%s); set %s to a writable directory."
                            % (path, exc.strerror, variable)) from exc
    return path


def check_interval(interval) -> int:
    if isinstance(interval, bool) or not isinstance(interval, int) or not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise DatapathError("interval %r must be a whole number of seconds from %d to %d."
                            % (interval, MIN_INTERVAL, MAX_INTERVAL))
    return interval


def unit_texts(*, python: str, tool_file: str, directory: str, state_dir: str, bpffs_path: str,
               interval: int, generic_ok: list[str] | tuple = ()) -> dict[str, str]:
    """{unit file name: text} of the service that writes the metrics once and the timer that runs it."""
    argv = [python, tool_file, "metrics", "--dir", directory, "--state-dir", state_dir, "--bpffs", bpffs_path]
    for ifname in generic_ok:
        argv += ["--generic-ok", ifname]
    header = "# Written by wirespeed.datapath (role metrics); changes here are overwritten."
    return {
        SERVICE: "\n".join([
            header, "[Unit]", "Description=Write the wirespeed datapath counters for node_exporter",
            "Documentation=https://github.com/wirespeed/datapath", "After=local-fs.target", "",
            "[Service]", "Type=oneshot", "ExecStart=%s" % units.exec_line(argv),
            "Nice=10", "TimeoutStartSec=%d" % max(30, interval), ""]),
        TIMER: "\n".join([
            header, "[Unit]", "Description=Refresh the wirespeed datapath metrics every %d seconds" % interval,
            "Documentation=https://github.com/wirespeed/datapath", "",
            "[Timer]", "OnBootSec=%d" % min(interval, 30), "OnUnitActiveSec=%d" % interval, "AccuracySec=1",
            "Unit=%s" % SERVICE, "", "[Install]", "WantedBy=%s" % TIMER_WANTED_BY, ""]),
    }


def install(directory: str, *, state_dir: str = DEFAULT_STATE_DIR, bpffs_path: str = bpffs.DEFAULT_BPFFS,
            unit_dir: str = "/etc/systemd/system", interval: int = 60, python: str | None = None,
            generic_ok: list[str] | tuple = (), entry: str = tool.ENTRY, check_mode: bool = False) -> dict:
    """The host tool, the service and the enabled timer; {changed, tool, units}."""
    check_interval(interval)
    installed = tool.install(state_dir, entry=entry, check_mode=check_mode, python=python)
    texts = unit_texts(python=python or sys.executable, tool_file=installed["path"], directory=directory,
                       state_dir=state_dir, bpffs_path=bpffs_path, interval=interval, generic_ok=generic_ok)
    placed = units.place_units(unit_dir, texts, (TIMER, TIMER_WANTED_BY), what="metrics units",
                               check_mode=check_mode)
    return {"changed": installed["changed"] or placed, "tool": installed["path"],
            "units": [os.path.join(unit_dir, n) for n in texts]}


def uninstall(directory: str, *, unit_dir: str = "/etc/systemd/system", check_mode: bool = False) -> dict:
    """Remove the timer, the service and the metrics file (the host tool stays: the restore uses it too)."""
    return units.remove_files([os.path.join(unit_dir, TIMER_WANTED_BY + ".wants", TIMER),
                               os.path.join(unit_dir, TIMER), os.path.join(unit_dir, SERVICE),
                               os.path.join(directory, FILE_NAME)], check_mode)
