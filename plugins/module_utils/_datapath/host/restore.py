"""Boot-time restore of the confirmed datapath, and the systemd unit that runs it before the network.

At boot bpffs is empty and nothing is attached, but the state directory (the
disk) still holds boot.json: the last confirmed datapath, as a checkpoint of
Records and configuration-map contents. restore() waits (bounded) for the
interfaces, deploys every program through its hook in chain order, refills
its configuration maps and reports per program what it did. It is
idempotent: on a host that runs the datapath already it changes nothing.
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


def wait_for_interfaces(names: set[str] | list[str], seconds: float, netns_of: dict | None = None) -> list:
    """The names (engine keys) that still do not exist after waiting up to `seconds` for them."""
    deadline = time.monotonic() + seconds
    while True:
        missing = [name for name in sorted(names) if not _exists(name, netns_of or {})]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.2)


def restore(state_dir: str = DEFAULT_STATE_DIR, *, bpffs_path: str = bpffs.DEFAULT_BPFFS,
            wait: float = 30.0) -> dict:
    """Make the host run its boot datapath; {'programs': [{interface, name, hook, result, ...}], 'ok': bool}."""
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
            _restore(history, store, report, bpffs_path, state_dir, wait)
        finally:
            if note is not None:
                write_json(history.expiry_note, note)
    report["ok"] = all(p["result"] in ("restored", "running") for p in report["programs"])
    return report


def _restore(history, store, report, bpffs_path, state_dir, wait) -> None:
    boot = history.boot()
    if boot is None:
        report["msg"] = "no boot datapath is recorded in %s; nothing to restore." % state_dir
        return
    programs = sorted(boot["programs"], key=_chain_order)
    netns_of = {p["interface"]: checkpoint.record_of(p).netns for p in programs if checkpoint.record_of(p).netns}
    missing = wait_for_interfaces({p["interface"] for p in programs}, wait, netns_of)
    bpffs.ensure_bpffs(bpffs_path)
    for p in programs:
        report["programs"].append(_restore_one(p, missing, bpffs_path, state_dir))
    wanted = {(p["interface"], p["name"]) for p in programs}
    for ifname, name, record in list(store.records()):
        if (ifname, name) not in wanted:  # deployed after the boot datapath was confirmed: not at boot
            hooks.remove(hooks.hook_for(record.hook).from_record(record, bpffs_path, state_dir))
            if store.current(ifname, name) is not None:
                store.record(ifname, name, None)
            report["removed"].append("%s/%s" % (ifname, name))


def _chain_order(p) -> tuple:
    return p["interface"], checkpoint.record_of(p).priority or 0, p["name"]


def _restore_one(p, missing, bpffs_path, state_dir) -> dict:
    record = checkpoint.record_of(p)
    entry = {"interface": p["interface"], "name": p["name"], "hook": record.hook, "priority": record.priority}
    if p["interface"] in missing:
        return dict(entry, result="skipped", reason="interface %s did not appear" % p["interface"])
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


def unit_text(*, python: str, tool_file: str, state_dir: str, bpffs_path: str, wait: float) -> str:
    """The systemd unit that restores the boot datapath before the network comes up."""
    argv = [python, tool_file, "restore", "--state-dir", state_dir, "--bpffs", bpffs_path, "--wait", "%g" % wait]
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
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=%s" % command,
        "TimeoutStartSec=%d" % (int(wait) + 60),
        "",
        "[Install]",
        "WantedBy=%s" % WANTED_BY,
        "",
    ])


def install(state_dir: str = DEFAULT_STATE_DIR, *, bpffs_path: str = bpffs.DEFAULT_BPFFS,
            unit_dir: str = "/etc/systemd/system", python: str | None = None, wait: float = 30.0,
            entry: str = tool.ENTRY, check_mode: bool = False) -> dict:
    """Install the host tool and the enabled restore unit; {changed, tool, unit, enabled}. A unit directory that
    cannot be one is refused before anything is written."""
    units.check_unit_dir(unit_dir)
    installed = tool.install(state_dir, entry=entry, check_mode=check_mode, python=python)
    unit = os.path.join(unit_dir, UNIT_NAME)
    link = os.path.join(unit_dir, WANTED_BY + ".wants", UNIT_NAME)
    text = unit_text(python=python or sys.executable, tool_file=installed["path"], state_dir=state_dir,
                     bpffs_path=bpffs_path, wait=wait)
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
