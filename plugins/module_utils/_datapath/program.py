# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""One deployable program, XDP or TC: loaded beside its pinned maps, compared, pinned.

Shared by the XDP chain and the TC filters: the new version is loaded with
the maps pinned by the previous one wherever their definitions still match
(so entries and counters survive), compared with the pinned program by
what the kernel holds, and pinned with atomic renames once it is live.
"""

from __future__ import annotations

import os
import re

from . import bpffs, libbpf
from .errors import DatapathError
from .loader import BpfObject, program_maps, read_rodata

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
KIND_NAMES = {libbpf.PROG_TYPE_XDP: "an XDP program", libbpf.PROG_TYPE_SCHED_CLS: "a tc program"}


def check_name(name):
    """A program's name becomes a bpffs directory: refuse what cannot be one."""
    if not _NAME.match(name or ""):
        raise DatapathError("name %r must start with a letter or digit and hold only letters, digits, '_' "
                            "and '-' (it becomes a bpffs directory)." % (name,))


def pin_paths(bpffs_path, interface, name, pin_path=None):
    """(pin directory, index path) of a program; a custom pin_path is found again through a symlink at the index."""
    index_path = os.path.join(bpffs.interface_dir(bpffs_path, interface), name)
    if pin_path:
        return pin_path, index_path
    if os.path.islink(index_path):
        return os.path.realpath(index_path), index_path
    return index_path, index_path


def fingerprint(fd):
    """What makes two loaded programs the same datapath: instructions, live .rodata, maps."""
    info = libbpf.prog_info(fd)
    return {"tag": info["tag"], "name": info["name"], "rodata": read_rodata(fd).hex(),
            "maps": sorted(i for i, _def in program_maps(fd).values())}


def prog_id(fd):
    return libbpf.prog_info(fd)["id"]


def check_pin_kind(pin_path, name, interface, prog_type):
    """Refuse to take over a name an XDP program holds for TC, or the other way round."""
    fd = bpffs.get(os.path.join(pin_path, "prog"))
    if fd is None:
        return
    try:
        kind = libbpf.prog_info(fd)["type"]
    finally:
        os.close(fd)
    if kind != prog_type:
        raise DatapathError("name %r on interface %r is already %s deployed by wirespeed; choose another name."
                            % (name, interface, KIND_NAMES.get(kind, "another kind of program")))


class LoadedProgram:
    """The requested program, loaded and verified but not yet in the datapath."""

    def __init__(self, object_path, program, prog_type, config, pin_path, internal=None, reuse=None,
                 offload_ifindex=None):
        self.obj = BpfObject(object_path)
        try:
            self.function = self.obj.select(program, prog_type)
            defs = self.obj.maps()
            self.defined = set(defs)
            self.obj.set_config(config, internal)
            reuse = {n: fd for n, fd in (reuse or {}).items() if n in defs}
            for name, fd in reuse.items():
                self.obj.reuse_map(name, fd)
            self.reused, self.recreated = [], []
            for name, definition in sorted(defs.items()):
                if name in reuse:
                    continue
                fd = bpffs.get(os.path.join(pin_path, "maps", name))
                if fd is None:
                    continue
                try:
                    info = libbpf.map_info(fd)
                    if all(info[k] == definition[k] for k in definition):
                        self.obj.reuse_map(name, fd)
                        self.reused.append(name)
                    else:
                        self.recreated.append(name)
                finally:
                    os.close(fd)
            self.map_names = sorted(n for n in defs if n not in reuse)
            if offload_ifindex is not None:
                self.obj.set_ifindex(offload_ifindex)
            self.fd = self.obj.load()
        except Exception:
            self.obj.close()
            raise

    def close(self):
        self.obj.close()

    def pin(self, pin_path, index_path):
        """Pin the program and its maps; drop pins of maps this version no longer has."""
        bpffs.pin_replace(self.fd, os.path.join(pin_path, "prog"))
        if os.path.abspath(pin_path) != os.path.abspath(index_path) and not os.path.islink(index_path):
            os.symlink(pin_path, index_path)
        for name in self.map_names:
            path = os.path.join(pin_path, "maps", name)
            if name in self.recreated or not os.path.exists(path):
                bpffs.pin_replace(self.obj.map_fd(name), path)
        mdir = os.path.join(pin_path, "maps")
        for name in os.listdir(mdir) if os.path.isdir(mdir) else []:
            if name not in self.map_names:
                os.unlink(os.path.join(mdir, name))

    def map_paths(self, pin_path):
        return {n: os.path.join(pin_path, "maps", n) for n in self.map_names}


class Undo:
    """Steps to take back, newest first, if a later step fails."""

    def __init__(self):
        self.steps = []

    def add(self, fn, *args):
        self.steps.append((fn, args))

    def run(self):
        for fn, args in reversed(self.steps):
            try:
                fn(*args)
            except (OSError, DatapathError):  # best effort: keep undoing the rest
                continue
        self.steps = []


def unpin(pin_path, index_path, bpffs_path):
    """Remove a program's pins (and the index symlink of a custom pin_path)."""
    bpffs.remove_tree(pin_path)
    if os.path.islink(index_path):
        os.unlink(index_path)
    bpffs.prune(os.path.dirname(pin_path), bpffs_path)
