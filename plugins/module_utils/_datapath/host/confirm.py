"""Commit-confirmed changes: begin arms a host-local deadline; unless confirmed in time, the host rolls back by itself.

The timer does not depend on the SSH session or the module's process: a
transient systemd timer where systemd runs, a detached watchdog process
otherwise, each running the host tool (tool.py). Both end in expire(), which
rolls back to the checkpoint begin took, under the host lock, and records
why. confirm() disarms, keeps the checkpoint and makes the datapath the one
the host restores at boot.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time

from .. import checkpoint, info
from ..errors import DatapathError
from ..kernel import bpffs
from ..record.store import DEFAULT_STATE_DIR, StateStore, read_json, write_json
from . import tool

MAX_TIMEOUT = 86400
POLL_SECONDS = 0.5
STALE_SECONDS = 30  # an arming this long past its deadline lost its timer (a crash): the next begin expires it


def check_timeout(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TIMEOUT:
        raise DatapathError("confirm_timeout %r must be a whole number of seconds from 1 to %d (a day); 120 suits "
                            "most fleets." % (value, MAX_TIMEOUT))
    return value


def aborted_total(state_dir: str) -> int:
    """XDP_ABORTED packets counted so far by every program this host runs."""
    return info.sample(state_dir)["aborted"]


def begin(state_dir: str = DEFAULT_STATE_DIR, *, bpffs_path: str = bpffs.DEFAULT_BPFFS, timeout: object = None,
          check_mode: bool = False, python: str | None = None, intent: str | None = None,
          entry: str = tool.ENTRY) -> dict:
    """checkpoint.begin, then (with a timeout) arm the host's own rollback; all under the host lock. A run whose
    intent the datapath is already converged to arms nothing: it will change nothing."""
    if timeout is not None:
        timeout = check_timeout(timeout)
    with StateStore(state_dir).lock():  # first: refuses a state directory that cannot be written, by name
        return _begin(state_dir, bpffs_path, timeout, check_mode, python, intent, entry)


def _begin(state_dir, bpffs_path, timeout, check_mode, python, intent, entry) -> dict:
    history = checkpoint.History(state_dir)
    armed = history.armed()
    if armed is not None and time.time() > armed["deadline"] + STALE_SECONDS and not check_mode:
        expire(state_dir, bpffs_path, armed["token"], "its timer did not fire; the next begin found it expired")
    result = checkpoint.begin(state_dir, check_mode, intent=intent, bpffs_path=bpffs_path)
    if timeout is None or result["converged"]:
        return result
    result.update(confirm_timeout=timeout, armed=not check_mode)
    if check_mode:
        return result
    installed = tool.install(state_dir, entry=entry, python=python)
    now = time.time()
    armed = {"token": secrets.token_hex(8), "timeout": timeout, "deadline": now + timeout,
             "armed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "bpffs": bpffs_path,
             "aborted": aborted_total(state_dir)}
    write_json(history.armed_path, armed)
    try:
        armed["timer"] = _start_timer(state_dir, bpffs_path, armed, installed["path"], python or sys.executable)
    except Exception:
        history.disarm()
        raise
    write_json(history.armed_path, armed)
    result.update(deadline=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(armed["deadline"])),
                  timer=armed["timer"]["kind"])
    return result


def _start_timer(state_dir, bpffs_path, armed, tool_file, python) -> dict:
    args = ["--state-dir", state_dir, "--bpffs", bpffs_path, "--token", armed["token"]]
    if os.path.isdir("/run/systemd/system") and shutil.which("systemd-run"):
        unit = "wirespeed-confirm-%s" % armed["token"]
        cmd = ["systemd-run", "--unit", unit, "--on-active=%ds" % armed["timeout"],
               "--timer-property=AccuracySec=1s", "--description=roll back an unconfirmed wirespeed change",
               python, tool_file, "expire"] + args
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DatapathError("systemd-run could not arm the confirm timer (%s); nothing was changed."
                                % (proc.stderr.strip() or proc.returncode))
        return {"kind": "systemd", "unit": unit}
    log_path = os.path.join(os.path.dirname(checkpoint.History(state_dir).armed_path), "watchdog.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([python, tool_file, "watchdog"] + args, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, close_fds=True, start_new_session=True, cwd="/")
    return {"kind": "process", "pid": proc.pid}


def watchdog(state_dir: str, bpffs_path: str, token: str) -> dict:
    """Wait for the deadline of arming `token`; leave quietly when it is confirmed (or replaced) first."""
    history = checkpoint.History(state_dir)
    while True:
        armed = history.armed()
        if armed is None or armed.get("token") != token:
            return {"expired": False}
        left = armed["deadline"] - time.time()
        if left <= 0:
            return expire(state_dir, bpffs_path, token)
        time.sleep(min(POLL_SECONDS, left))


def expire(state_dir: str, bpffs_path: str, token: str, reason: str | None = None) -> dict:
    """Roll back the change armed under token, unless it was confirmed meanwhile; record why, even when the rollback
    itself fails (then the note says so, and the error goes on)."""
    history = checkpoint.History(state_dir)
    with StateStore(state_dir).lock():
        armed = history.armed()
        if armed is None or armed.get("token") != token:
            return {"expired": False}
        reason = reason or "it was not confirmed within %d s" % armed["timeout"]
        actions, failure = [], None
        try:
            pending = history.pending()
            if pending is not None and not checkpoint.same(pending, checkpoint.take(state_dir)):
                actions = checkpoint.rollback("previous", bpffs_path, state_dir)["actions"]
        except DatapathError as exc:
            failure = exc
            reason += "; the rollback itself failed (%s), so check this host" % exc.message
        finally:
            history.disarm()
            history.drop_pending()
            record = {"armed_at": armed["armed_at"], "reason": reason, "actions": actions, "expired": True,
                      "rolled_back_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            write_json(history.expiry_note, record)
        if failure is not None:
            raise failure
        return record


def confirm(state_dir: str = DEFAULT_STATE_DIR, *, bpffs_path: str = bpffs.DEFAULT_BPFFS,
            check_mode: bool = False, intent: str | None = None) -> dict:
    """Keep the change begun with a timeout: disarm, keep its checkpoint, make it the boot datapath."""
    history = checkpoint.History(state_dir)
    with StateStore(state_dir).lock():
        armed = history.armed()
        if armed is not None and time.time() >= armed["deadline"]:  # too late, whether or not the timer fired yet
            if check_mode:
                raise DatapathError("the change begun at %s is past its confirm deadline; the host rolls it back."
                                    % armed["armed_at"], code="rolled_back")
            expire(state_dir, bpffs_path, armed["token"], "its confirm came after the deadline")
            armed = None
        if armed is None:
            done = read_json(history.expiry_note, "unconfirmed record", "remove it")
            if done is not None:
                when = (done["armed_at"], done["rolled_back_at"], done["reason"])
                raise DatapathError("the change begun at %s was rolled back by the host itself at %s because %s; "
                                    "its previous datapath runs again." % when, code="rolled_back")
            return {"changed": False, "confirmed": False,
                    "msg": "nothing on this host is waiting for a confirm; there is no change to confirm."}
        rise = (armed.get("aborted", 0), aborted_total(state_dir))
        if rise[1] > rise[0]:
            if not check_mode:
                expire(state_dir, bpffs_path, armed["token"], "XDP_ABORTED rose from %d to %d packets" % rise)
            raise DatapathError("the change is unhealthy: XDP_ABORTED rose from %d to %d packets since it began, so "
                                "it was not confirmed and the host rolled it back." % rise, code="unhealthy")
        now = checkpoint.take(state_dir)
        if check_mode:
            return {"changed": False, "confirmed": False, "programs": checkpoint.describe(now)}
        history.disarm()
        history.settle_pending(now)
        boot = history.save_boot(now)
        history.mark_converged(intent, now, bpffs_path)
        return {"changed": False, "confirmed": True, "boot_datapath_updated": boot,
                "programs": checkpoint.describe(now)}


def abort(state_dir: str = DEFAULT_STATE_DIR, *, bpffs_path: str = bpffs.DEFAULT_BPFFS, reason: str | None = None,
          check_mode: bool = False) -> dict:
    """Take back the change waiting for its confirm now; when the host already did, say so. A run begun without a
    timeout has its change since begin taken back. Never goes further back than the run's begin."""
    history = checkpoint.History(state_dir)
    with StateStore(state_dir).lock():
        armed = history.armed()
        if armed is not None:
            if check_mode:
                return {"changed": True, "rolled_back": True, "msg": "the unconfirmed change would be rolled back."}
            done = expire(state_dir, bpffs_path, armed["token"], reason or "the controller abandoned it")
            os.unlink(history.expiry_note)
            return {"changed": bool(done["actions"]), "rolled_back": True, "actions": done["actions"],
                    "msg": "the unconfirmed change begun at %s was rolled back (%s)." % (done["armed_at"],
                                                                                         done["reason"])}
        done = read_json(history.expiry_note, "unconfirmed record", "remove it")
        if done is not None:
            if not check_mode:
                os.unlink(history.expiry_note)
            return {"changed": False, "rolled_back": True, "actions": done["actions"],
                    "msg": "the host rolled the change begun at %s back by itself at %s because %s."
                           % (done["armed_at"], done["rolled_back_at"], done["reason"])}
        pending = history.pending()
        if pending is not None and not checkpoint.same(pending, checkpoint.take(state_dir)):
            # a run begun without a timeout: take back what it changed since its begin, and no further
            done = checkpoint.rollback("previous", bpffs_path, state_dir, check_mode)
            return {"changed": done["changed"], "rolled_back": True, "actions": done["actions"],
                    "msg": "the change begun at %s was rolled back (%s)." % (pending.get("taken_at", "?"),
                                                                             reason or "the controller abandoned it")}
        return {"changed": False, "rolled_back": False, "msg": "nothing on this host was waiting for a confirm, and "
                "the datapath is as the last run found it at its begin."}
