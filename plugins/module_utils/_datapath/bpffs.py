# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""The BPF filesystem: make sure it is mounted, pin atomically, clean up.

Layout under <bpffs>/wirespeed/<interface>/:
    _chain/root, _chain/progs, _chain/links   the chain (root program and its two maps)
    <name>/prog                                 a deployed program
    <name>/maps/<map>                           its maps
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil

from . import libbpf
from .errors import DatapathError

DEFAULT_BPFFS = "/sys/fs/bpf"
CHAIN_DIR = "_chain"


def mounted_bpffs(path):
    """True when path is a mount point of type bpf."""
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mounts") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "bpf" and fields[1] == path:
                    return True
    except OSError:
        pass
    return False


def ensure_bpffs(path=DEFAULT_BPFFS):
    """Mount bpffs at path when it is not mounted there yet."""
    if mounted_bpffs(path):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    try:
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
        ret = libc.mount(b"bpf", path.encode(), b"bpf", 0, None)
        err = ctypes.get_errno() if ret != 0 else 0
    except OSError as exc:
        err = exc.errno or errno.EINVAL
    if err:
        raise DatapathError(
            "the BPF filesystem is not mounted at %s and mounting it failed (%s); mount it with "
            "`mount -t bpf bpf %s` or set bpffs to a mounted one." % (path, os.strerror(err), path))
    return True


def interface_dir(bpffs, ifname):
    return os.path.join(bpffs, "wirespeed", ifname)


def chain_dir(bpffs, ifname):
    return os.path.join(interface_dir(bpffs, ifname), CHAIN_DIR)


def pin_replace(fd, path):
    """Pin fd at path, replacing what is there in one rename."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + "__staging"  # bpffs refuses dots in names
    if os.path.exists(tmp):
        os.unlink(tmp)
    libbpf.obj_pin(fd, tmp)
    os.rename(tmp, path)


def get(path):
    """An fd for the pinned object at path, or None when nothing is pinned there."""
    if not os.path.exists(path):
        return None
    return libbpf.obj_get(path)


def remove_tree(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


def prune(path, stop):
    """Remove empty directories from path up to, not including, stop."""
    path = os.path.abspath(path)
    stop = os.path.abspath(stop)
    while path.startswith(stop + os.sep) and os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)
        path = os.path.dirname(path)
