"""The BPF filesystem: mount it, the pin layout and the names allowed in it, atomic pins, clean-up.

Layout under <bpffs>/wirespeed/<interface>/:
    _chain/root, _chain/progs, _chain/links   the chain (root program and its two maps)
    <name>/prog                                 a deployed program
    <name>/maps/<map>                           its maps
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import shutil

from ..errors import DatapathError
from . import libbpf

DEFAULT_BPFFS = "/sys/fs/bpf"
CHAIN_DIR = "_chain"
_PROGRAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_MAP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]{0,63}$")
_IFNAME = re.compile(r"^[^/\s:]{1,15}$")
_NETNS_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def check_name(name: str | None, what: str = "name") -> None:
    """A program's name becomes a bpffs directory: refuse what cannot be one (a '/', '..', a leading dot)."""
    if not _PROGRAM_NAME.match(name or ""):
        raise DatapathError("%s %r must start with a letter or digit and hold only letters, digits, '_' "
                            "and '-' (it becomes a bpffs directory)." % (what, name))


def check_map_name(name: str | None) -> None:
    if not _MAP_NAME.match(name or ""):
        raise DatapathError("map %r is not a BPF map name (letters, digits, '_' and '.', not starting with '.'); "
                            "use the name the program gives the map." % (name,))


def check_interface_name(name: str | None) -> None:
    if not _IFNAME.match(name or "") or name in (".", ".."):
        raise DatapathError("interface %r is not an interface name (at most 15 characters, no '/', ':' or "
                            "spaces); check the interface option." % (name,))


def _mount_of(path):
    """(mount point, fs type) of the filesystem that holds path (which need not exist yet)."""
    path = os.path.realpath(path)
    best = ("/", None)
    try:
        with open("/proc/self/mounts") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[0]):
                    best = (point, fields[2])
    except OSError:
        pass
    return best


def check_pin_path(pin_path: str, bpffs_path: str) -> None:
    """A custom pin_path must lie under the bpffs option or on another mounted BPF filesystem."""
    real, root = os.path.realpath(pin_path), os.path.realpath(bpffs_path)
    if real.startswith(root + os.sep):
        return
    if _mount_of(pin_path)[1] == "bpf" and real != _mount_of(pin_path)[0]:
        return
    raise DatapathError("pin_path %s is not on a BPF filesystem; choose a directory under %s (the bpffs option)."
                        % (pin_path, bpffs_path))


def pin_paths(bpffs_path: str, interface: str, name: str, pin_path: str | None = None) -> tuple[str, str]:
    """(pin directory, index path) of a program; a custom pin_path is found again through a symlink at the index."""
    check_name(name)
    index_path = os.path.join(interface_dir(bpffs_path, interface), name)
    if pin_path:
        check_pin_path(pin_path, bpffs_path)
        return pin_path, index_path
    if os.path.islink(index_path):
        return os.path.realpath(index_path), index_path
    return index_path, index_path


def unpin(pin_path: str, index_path: str, bpffs_path: str) -> None:
    """Remove a program's pins (and the index symlink of a custom pin_path)."""
    remove_tree(pin_path)
    if os.path.islink(index_path):
        os.unlink(index_path)
    prune(os.path.dirname(pin_path), bpffs_path)


def mounted_bpffs(path: str) -> bool:
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


def ensure_bpffs(path: str = DEFAULT_BPFFS) -> bool:
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


def interface_dir(bpffs: str, ifname: str) -> str:
    """The folder of an interface's pins; ifname may be a key `<netns label>:<interface>` (kernel/netns.py)."""
    label, _sep, name = ifname.rpartition(":") if ":" in (ifname or "") else ("", "", ifname)
    if _sep and not _NETNS_LABEL.match(label):
        raise DatapathError("network namespace label %r of %r holds characters bpffs refuses." % (label, ifname))
    check_interface_name(name)
    return os.path.join(bpffs, "wirespeed", ifname)


def chain_dir(bpffs: str, ifname: str) -> str:
    return os.path.join(interface_dir(bpffs, ifname), CHAIN_DIR)


def pinned_programs(bpffs_path: str, ifname: str) -> dict[int, str]:
    """{prog id: name} of the programs wirespeed pinned for an interface."""
    idir = interface_dir(bpffs_path, ifname)
    out = {}
    if not os.path.isdir(idir):
        return out
    for name in sorted(os.listdir(idir)):
        fd = get(os.path.join(idir, name, "prog"))
        if fd is not None:
            try:
                out[libbpf.prog_info(fd)["id"]] = name
            finally:
                os.close(fd)
    return out


def pin_replace(fd: int, path: str) -> None:
    """Pin fd at path, replacing what is there in one rename."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + "__staging"  # bpffs refuses dots in names
    if os.path.exists(tmp):
        os.unlink(tmp)
    libbpf.obj_pin(fd, tmp)
    os.rename(tmp, path)


def get(path: str) -> int | None:
    """An fd for the pinned object at path, or None when nothing is pinned there."""
    if not os.path.exists(path):
        return None
    return libbpf.obj_get(path)


def remove_tree(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


def prune(path: str, stop: str) -> None:
    """Remove empty directories from path up to, not including, stop."""
    path = os.path.abspath(path)
    stop = os.path.abspath(stop)
    while path.startswith(stop + os.sep) and os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)
        path = os.path.dirname(path)
