"""The host's state directory: state.json (current and previous Record per program), stored objects, the lock.

The record is provenance and the basis of rollback; whether a task changes
anything is always decided by looking at the kernel. The file is replaced
with write-to-temp, fsync, rename, so an interrupted run leaves either the
old or the new record, never a torn one. Objects are kept by content hash
so a previous version can be loaded again.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator

from ..errors import DatapathError
from .record import Record

DEFAULT_STATE_DIR = "/var/lib/wirespeed"
FORMAT = 2  # 1: records were flat dicts (migrated on read by Record.from_dict)
_HELD = {}  # state directories whose lock this process holds, and how deep


def write_json(path: str, data: object, **dump_args: object) -> None:
    """Replace path with data as JSON: write a temporary file, fsync, rename, fsync the directory."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, **dump_args)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dirfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_json(path: str, what: str, remedy: str) -> object:
    """The JSON in path, or None when there is no such file; a DatapathError naming it when it is not JSON."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise DatapathError("the %s %s is not valid JSON (%s); %s." % (what, path, exc, remedy)) from exc


RESERVE_BYTES = 64 * 1024  # room a change's record may add to state.json


class StateStore:
    """state.json under a state directory; every change is one atomic replace, made under lock()."""

    def __init__(self, directory: str = DEFAULT_STATE_DIR):
        self.directory = directory
        self.path = os.path.join(directory, "state.json")

    def _ensure_dir(self):
        try:  # root's alone: makedirs gives the mode to the last folder only
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            os.makedirs(os.path.join(self.directory, "objects"), mode=0o700, exist_ok=True)
        except OSError as exc:
            raise DatapathError("the state directory %s cannot be created (%s); set state_dir to a writable path."
                                % (self.directory, exc.strerror)) from exc

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialize wirespeed runs on this host: deploys, removals, map syncs, checkpoints, rollbacks.

        Reentrant within one process, so a rollback can hold it across the deploys it makes.
        """
        key = os.path.realpath(self.directory)
        if key in _HELD:
            _HELD[key] += 1
            try:
                yield
            finally:
                _HELD[key] -= 1
            return
        self._ensure_dir()
        path = os.path.join(self.directory, ".lock")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise DatapathError("the state directory %s is not writable (%s); set state_dir to a writable path."
                                % (self.directory, exc.strerror)) from exc
        with open(path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            _HELD[key] = 1
            try:
                yield
            finally:
                del _HELD[key]
                fcntl.flock(fh, fcntl.LOCK_UN)

    def load(self) -> dict:
        data = read_json(self.path, "state file", "move it aside to start a new record")
        if data is None:
            return {"format": FORMAT, "interfaces": {}}
        data.setdefault("interfaces", {})
        return data

    def save(self, data: dict) -> None:
        self._ensure_dir()
        write_json(self.path, dict(data, format=FORMAT), indent=1, sort_keys=True)

    def reserve(self, object_path: str | None = None, sha256: str | None = None) -> None:
        """Make sure what a change will record fits, before the kernel changes: keep the object (content-addressed,
        harmless if the change goes no further) and write a probe as large as state.json will grow to."""
        try:
            if object_path:
                self.keep_object(object_path, sha256)
            size = (os.path.getsize(self.path) if os.path.exists(self.path) else 0) + RESERVE_BYTES
            fd, probe = tempfile.mkstemp(dir=self.directory, prefix=".reserve.")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(b"\0" * size)
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                os.unlink(probe)
        except OSError as exc:
            raise DatapathError("the state directory %s cannot take this change's record (%s); free space there or "
                                "set state_dir to another directory; nothing was changed." % (self.directory,
                                                                                              exc.strerror)) from None

    def keep_object(self, path: str, sha256: str) -> str:
        """Copy an object into the content-addressed store; return its stored path."""
        self._ensure_dir()
        target = os.path.join(self.directory, "objects", sha256 + ".o")
        if not os.path.exists(target):
            tmp = target + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # root's alone
            with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, target)
        return target

    def interface_flag(self, ifname: str, key: str) -> bool:
        """A fact about the interface itself (such as "we created its clsact qdisc")."""
        return bool(self.load()["interfaces"].get(ifname, {}).get("_interface", {}).get(key))

    def set_interface_flag(self, ifname: str, key: str, value: bool) -> None:
        data = self.load()
        flags = data["interfaces"].setdefault(ifname, {}).setdefault("_interface", {})
        if value:
            flags[key] = True
        else:
            flags.pop(key, None)
        self.save(data)

    @property
    def expiry_note(self) -> str:
        """Written when the host rolled back an unconfirmed change by itself; deploys refuse while it is there."""
        return os.path.join(self.directory, "checkpoints", "unconfirmed.json")

    def refuse_after_expiry(self) -> None:
        """A run whose change the host already took back must not go on changing it (it would leave a datapath
        that is neither the old nor the new one); the next begin, an abort or a rollback clears the note."""
        note = read_json(self.expiry_note, "unconfirmed record", "remove it")
        if note is not None:
            when = (note["armed_at"], note["rolled_back_at"], note["reason"])
            raise DatapathError("the change begun at %s was rolled back by the host itself at %s because %s; this run "
                                "stops here, so run the playbook again." % when, code="rolled_back")

    @staticmethod
    def _entry(data, ifname, name):
        return data["interfaces"].get(ifname, {}).get(name) or {}

    def current(self, ifname: str, name: str) -> Record | None:
        return Record.from_dict(self._entry(self.load(), ifname, name).get("current"), ifname, name)

    def previous(self, ifname: str, name: str) -> Record | None:
        return Record.from_dict(self._entry(self.load(), ifname, name).get("previous"), ifname, name)

    def records(self) -> Iterator[tuple[str, str, Record]]:
        """(interface, name, current Record) of every deployed program, in name order."""
        for ifname, entries in sorted(self.load()["interfaces"].items()):
            for name, entry in sorted(entries.items()):
                if name.startswith("_"):
                    continue
                record = Record.from_dict((entry or {}).get("current"), ifname, name)
                if record is not None:
                    yield ifname, name, record

    def record(self, ifname: str, name: str, current: Record | None) -> Record | None:
        """Make current the deployed version of (ifname, name); the old one becomes previous; return the old."""
        data = self.load()
        entry = data["interfaces"].setdefault(ifname, {}).setdefault(name, {})
        old = entry.get("current")
        entry["previous"] = Record.from_dict(old, ifname, name).to_dict() if old else None
        entry["current"] = current.stamped().to_dict() if current is not None else None
        self.save(data)
        return Record.from_dict(old, ifname, name)
