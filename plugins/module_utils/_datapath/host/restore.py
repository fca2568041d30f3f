"""Boot-time restore of the confirmed datapath, and the systemd unit that runs it before the network.

At boot bpffs is empty and nothing is attached, but the state directory (the
disk) still holds boot.json: the last confirmed datapath, as a checkpoint of
Records and configuration-map contents. restore() deploys every program
through its hook in chain order and refills its configuration maps, device by
device, and reports per program what it did. It is idempotent: on a host that
runs the datapath already it changes nothing.

Devices that do not exist yet never hold the others back. The restore attaches
at once to every device that exists, then waits for the missing ones in two
bounded phases, attaching each one's programs the moment it appears:

- `wait` seconds (default 5) during which network-pre.target is still held: a
  NIC whose driver is still probing gets its firewall before the network
  configuration brings it up;
- then the unit reports itself started (sd_notify READY=1; the unit is
  Type=notify) and boot goes on, while the same process keeps attaching devices
  that the network configuration creates after network-pre.target (bonds,
  VLANs, WireGuard, VXLAN, bridges) until `watch` seconds after it started
  (default 300), then exits.

A device that never appears is reported ("missing", one line in the journal
naming it) and the unit still ends green: what exists was restored. Only a
program that could not be restored (a lost object, a refused load) fails it.

Why a watcher in the restore's own process rather than per-device activation
(a udev rule or sys-subsystem-net-devices-<name>.device pulling a templated
unit): systemd creates device units only from udev's database, and udev does
not run in containers (systemd-nspawn hosts, our lab, many CI images), so a
device unit never appears there; the watcher needs nothing but rtnetlink, so it
works the same on every host that runs systemd. It wakes on RTM_NEWLINK
(links.LinkEvents) rather than polling, looks again every second for devices in
other network namespaces, takes the state lock only while it attaches, and reads
boot.json again each time, so an Ansible run after boot is never blocked by it
and never undone by it. Its bound and its READY make it never block boot.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import socket
import sys
import time

from .. import checkpoint, hooks
from ..errors import DatapathError
from ..kernel import bpffs, links
from ..kernel import netns as netns_
from ..record.store import DEFAULT_STATE_DIR, StateStore, read_json, write_json
from . import tool, units

DEFAULT_WAIT = 5.0
DEFAULT_WATCH = 300.0


def _exists(name: str, netns_of: dict) -> bool:
    label, ifname = netns_.split(name)
    if label is None:
        try:
            socket.if_nametoindex(name)
        except OSError:
            return False
        return True
    try:  # an interface in another namespace (key `<label>:<interface>`): the namespace too must be there
        return ifname in links.interfaces(netns_of.get(name) or label)
    except DatapathError:
        return False


def _log(text: str) -> None:
    """One line for the journal (stderr of the unit); the report is the JSON line on stdout."""
    sys.stderr.write("wirespeed-restore: %s\n" % text)
    sys.stderr.flush()


def restore(state_dir: str = DEFAULT_STATE_DIR, *, bpffs_path: str = bpffs.DEFAULT_BPFFS,
            wait: float = DEFAULT_WAIT, watch: float = 0.0, ready=None) -> dict:
    """Make the host run its boot datapath; {'programs': [{interface, name, hook, result, ...}], 'ok': bool}.

    Devices that exist are restored at once; missing ones are awaited `wait` seconds, then ready() is called
    (sd_notify READY=1 from the unit), then they are awaited until `watch` seconds after the start. result is
    restored, running, failed, or missing (a device that never appeared: reported, not a failure)."""
    started = time.monotonic()
    history = checkpoint.History(state_dir)
    store = StateStore(state_dir)
    report = {"programs": [], "removed": [], "ok": True}
    with store.lock():
        note = read_json(history.expiry_note, "unconfirmed record", "remove it")
        armed = history.armed()
        if armed is not None:  # the host went down while a change waited for its confirm: it never was confirmed
            history.disarm()
            history.drop_pending()
            report["unconfirmed_change_dropped"] = armed["armed_at"]
            note = {"armed_at": armed["armed_at"], "rolled_back_at": _now(), "actions": [], "expired": True,
                    "reason": "the host restarted before the change was confirmed"}
        history.clear_expiry_note()  # the restore's own deploys go ahead; the note is written back afterwards
        try:
            missing = _restore(history, store, report, bpffs_path, state_dir)
        finally:
            if note is not None:
                write_json(history.expiry_note, note)
    if missing:
        _log("restored what exists; waiting for %s" % ", ".join(sorted(missing)))
        _await(missing, started + wait, history, store, report, bpffs_path, state_dir, started)
    if ready is not None:
        ready()
    if missing and watch > wait:
        _await(missing, started + watch, history, store, report, bpffs_path, state_dir, started)
    for ifname in sorted(missing):
        reason = "interface %s did not appear within %g s" % (ifname, max(wait, watch))
        _log("%s; its programs were not restored (if it is gone for good, take it out of the datapath and "
             "confirm)" % reason)
        for p in missing[ifname]:
            record = checkpoint.record_of(p)
            report["programs"].append({"interface": ifname, "name": p["name"], "hook": record.hook,
                                       "priority": record.priority, "result": "missing", "reason": reason})
    report["ok"] = all(p["result"] in ("restored", "running", "missing") for p in report["programs"])
    return report


def _restore(history, store, report, bpffs_path, state_dir) -> dict:
    """Restore the programs of every device that exists; {interface: [boot entries]} of those that do not."""
    boot = history.boot()
    if boot is None:
        report["msg"] = "no boot datapath is recorded in %s; nothing to restore." % state_dir
        return {}
    programs = sorted(boot["programs"], key=_chain_order)
    netns_of = _netns_of(programs)
    bpffs.ensure_bpffs(bpffs_path)
    missing = {}
    for p in programs:
        if p["interface"] in missing or not _exists(p["interface"], netns_of):
            missing.setdefault(p["interface"], []).append(p)
            continue
        report["programs"].append(_restore_one(p, bpffs_path, state_dir))
    wanted = {(p["interface"], p["name"]) for p in programs}
    for ifname, name, record in list(store.records()):
        if (ifname, name) not in wanted:  # deployed after the boot datapath was confirmed: not at boot
            hooks.remove(hooks.hook_for(record.hook).from_record(record, bpffs_path, state_dir))
            if store.current(ifname, name) is not None:
                store.record(ifname, name, None)
            report["removed"].append("%s/%s" % (ifname, name))
    return missing


def _netns_of(programs) -> dict:
    return {p["interface"]: checkpoint.record_of(p).netns for p in programs if checkpoint.record_of(p).netns}


def _await(missing, deadline, history, store, report, bpffs_path, state_dir, started) -> None:
    """Until deadline, attach each device of missing (popped from it) as soon as it exists."""
    netns_of = _netns_of([p for entries in missing.values() for p in entries])
    events = links.LinkEvents()
    try:
        while missing:
            for ifname in sorted(missing):
                if _exists(ifname, netns_of):
                    missing.pop(ifname)
                    _late(ifname, history, store, report, bpffs_path, state_dir, started)
            left = deadline - time.monotonic()
            if not missing or left <= 0:
                return
            events.wait(min(left, 1.0))  # a link appeared, or a second passed (devices in other namespaces)
    finally:
        events.close()


def _late(ifname, history, store, report, bpffs_path, state_dir, started) -> None:
    """A device that appeared after the first pass: its programs from the boot datapath as it is now."""
    with store.lock():
        if history.armed() is not None:  # a change made after boot waits for its confirm: it owns the datapath
            _log("interface %s appeared while a change waits for its confirm; left to that change" % ifname)
            return
        boot = history.boot() or {"programs": []}
        programs = sorted((p for p in boot["programs"] if p["interface"] == ifname), key=_chain_order)
        if programs:
            bpffs.ensure_bpffs(bpffs_path)
        for p in programs:
            entry = _restore_one(p, bpffs_path, state_dir)
            entry["appeared_after"] = round(time.monotonic() - started, 1)
            report["programs"].append(entry)
            _log("interface %s appeared after %.1f s: %s %s%s" % (
                ifname, entry["appeared_after"], p["name"], entry["result"],
                " (%s)" % entry["reason"] if entry.get("reason") else
                " (%s)" % entry["mode"] if entry.get("mode") else ""))


def _chain_order(p) -> tuple:
    return p["interface"], checkpoint.record_of(p).priority or 0, p["name"]


def _restore_one(p, bpffs_path, state_dir) -> dict:
    record = checkpoint.record_of(p)
    entry = {"interface": p["interface"], "name": p["name"], "hook": record.hook, "priority": record.priority}
    try:
        for path in [record.object] + list(record.objects.values()):
            if not path or not os.path.exists(path):
                raise DatapathError("its stored object %s is missing" % path)
        deployed = hooks.deploy(hooks.hook_for(record.hook).from_record(record, bpffs_path, state_dir))
        checkpoint.write_maps(p)
    except (DatapathError, OSError) as exc:
        return dict(entry, result="failed", reason=getattr(exc, "message", str(exc)))
    entries = sum(len(m["entries"]) for m in p["maps"].values())
    return dict(entry, result="restored" if deployed["changed"] else "running", mode=deployed.get("mode"),
                map_entries=entries)


UNIT_NAME = "wirespeed-restore.service"
WANTED_BY = "multi-user.target"


def unit_text(*, python: str, tool_file: str, state_dir: str, bpffs_path: str, wait: float,
              watch: float = DEFAULT_WATCH) -> str:
    """The systemd unit that restores the boot datapath before the network comes up (Type=notify: it is started,
    and network-pre.target reached, once what exists is restored; it goes on attaching later devices)."""
    argv = [python, tool_file, "restore", "--state-dir", state_dir, "--bpffs", bpffs_path, "--wait", "%g" % wait,
            "--watch", "%g" % watch]
    command = units.exec_line(argv)
    return "\n".join([
        "# Written by wirespeed.datapath (role persistence); changes here are overwritten.",
        "[Unit]",
        "Description=Restore the confirmed wirespeed XDP/TC datapath",
        "Documentation=https://github.com/wirespeed/datapath",
        "DefaultDependencies=no",
        "After=local-fs.target systemd-modules-load.service",
        "Wants=network-pre.target",
        "Before=network-pre.target shutdown.target",
        "Conflicts=shutdown.target",
        "ConditionPathExists=|%s" % units.unit_escape(os.path.join(state_dir, "boot.json")),
        "ConditionPathExists=|%s" % units.unit_escape(os.path.join(state_dir, "checkpoints", "armed.json")),
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        "RemainAfterExit=yes",
        "ExecStart=%s" % command,
        "TimeoutStartSec=%d" % (int(wait) + 60),
        "",
        "[Install]",
        "WantedBy=%s" % WANTED_BY,
        "",
    ])


def install(state_dir: str = DEFAULT_STATE_DIR, *, bpffs_path: str = bpffs.DEFAULT_BPFFS,
            unit_dir: str = "/etc/systemd/system", python: str | None = None, wait: float = DEFAULT_WAIT,
            watch: float = DEFAULT_WATCH, entry: str = tool.ENTRY, check_mode: bool = False) -> dict:
    """Install the host tool and the enabled restore unit; {changed, tool, unit, enabled}. A unit directory that
    cannot be one is refused before anything is written."""
    units.check_unit_dir(unit_dir)
    installed = tool.install(state_dir, entry=entry, check_mode=check_mode, python=python)
    unit = os.path.join(unit_dir, UNIT_NAME)
    link = os.path.join(unit_dir, WANTED_BY + ".wants", UNIT_NAME)
    text = unit_text(python=python or sys.executable, tool_file=installed["path"], state_dir=state_dir,
                     bpffs_path=bpffs_path, wait=wait, watch=watch)
    try:
        with open(unit) as fh:
            unit_changed = fh.read() != text
    except FileNotFoundError:
        unit_changed = True
    link_changed = os.path.realpath(link) != os.path.realpath(unit) or not os.path.islink(link)
    changed = installed["changed"] or unit_changed or link_changed
    if changed and not check_mode:
        try:
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if unit_changed:
                units.write_text(unit, text)
            if link_changed:
                if os.path.lexists(link):
                    os.unlink(link)
                os.symlink(unit, link)
        except OSError as exc:
            raise DatapathError("the restore unit cannot be written to %s (%s); set unit_dir to the systemd unit "
                                "directory." % (unit_dir, exc.strerror)) from exc
        units.daemon_reload()
    return {"changed": changed, "tool": installed["path"], "unit": unit, "enabled": True}


def uninstall(state_dir: str = DEFAULT_STATE_DIR, *, unit_dir: str = "/etc/systemd/system",
              check_mode: bool = False) -> dict:
    """Remove the restore unit, its enabling link and the host tool."""
    paths = [os.path.join(unit_dir, WANTED_BY + ".wants", UNIT_NAME), os.path.join(unit_dir, UNIT_NAME),
             tool.tool_path(state_dir)]
    present = [p for p in paths if os.path.lexists(p)]
    if present and not check_mode:
        for path in present:
            os.unlink(path)
        units.daemon_reload()
    return {"changed": bool(present), "removed": present, "enabled": False}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
