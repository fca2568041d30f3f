# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""What this collection deployed on a host, and the version before it.

The record is provenance and the basis of rollback; whether a task changes
anything is always decided by looking at the kernel. The file is replaced
with write-to-temp, fsync, rename, so an interrupted run leaves either the
old or the new record, never a torn one. Objects are kept by content hash
so a previous version can be loaded again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time

from .errors import DatapathError

DEFAULT_STATE_DIR = "/var/lib/wirespeed"
FORMAT = 1


def write_json(path, data, **dump_args):
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


def read_json(path, what, remedy):
    """The JSON in path, or None when there is no such file; a DatapathError naming it when it is not JSON."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise DatapathError("the %s %s is not valid JSON (%s); %s." % (what, path, exc, remedy)) from exc


class StateStore:
    def __init__(self, directory=DEFAULT_STATE_DIR):
        self.directory = directory
        self.path = os.path.join(directory, "state.json")

    def _ensure_dir(self):
        try:
            os.makedirs(os.path.join(self.directory, "objects"), mode=0o700, exist_ok=True)
        except OSError as exc:
            raise DatapathError("the state directory %s cannot be created (%s); set state_dir to a writable path."
                                % (self.directory, exc.strerror)) from exc

    @contextlib.contextmanager
    def lock(self):
        """Serialize wirespeed runs on this host."""
        self._ensure_dir()
        with open(os.path.join(self.directory, ".lock"), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def load(self):
        data = read_json(self.path, "state file", "move it aside to start a new record")
        if data is None:
            return {"format": FORMAT, "interfaces": {}}
        data.setdefault("interfaces", {})
        return data

    def save(self, data):
        self._ensure_dir()
        write_json(self.path, data, indent=1, sort_keys=True)

    def keep_object(self, path, sha256):
        """Copy an object into the content-addressed store; return its stored path."""
        self._ensure_dir()
        target = os.path.join(self.directory, "objects", sha256 + ".o")
        if not os.path.exists(target):
            tmp = target + ".tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        return target

    def interface_flag(self, ifname, key):
        """A fact about the interface itself (such as "we created its clsact qdisc")."""
        return bool(self.load()["interfaces"].get(ifname, {}).get("_interface", {}).get(key))

    def set_interface_flag(self, ifname, key, value):
        data = self.load()
        flags = data["interfaces"].setdefault(ifname, {}).setdefault("_interface", {})
        if value:
            flags[key] = True
        else:
            flags.pop(key, None)
        self.save(data)

    def current(self, ifname, name):
        entry = self.load()["interfaces"].get(ifname, {}).get(name) or {}
        return entry.get("current")

    def record(self, ifname, name, current):
        """Make current the deployed version of (ifname, name); the old one becomes previous."""
        data = self.load()
        entry = data["interfaces"].setdefault(ifname, {}).setdefault(name, {})
        old = entry.get("current")
        if current is not None:
            current = dict(current, deployed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        entry["previous"] = old
        entry["current"] = current
        self.save(data)
        return old
