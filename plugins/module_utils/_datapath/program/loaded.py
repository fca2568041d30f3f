"""One program of an object, loaded and verified beside its pinned maps, not yet in the datapath; pinned once live.

The new version is loaded with the maps pinned by the previous one wherever
their definitions still match (so entries and counters survive); it is
pinned with atomic renames once a hook has made it live.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

from ..errors import DatapathError
from ..kernel import bpffs, libbpf
from .bpf_object import BpfObject
from .config import write_config

MAX_ENTRIES_LIMIT = (1 << 31) - 1


def check_sizes(sizes: dict | None) -> dict:
    """map_sizes as {map name: max_entries}, each a positive integer; one sentence for the first bad one."""
    out = {}
    for name, count in (sizes or {}).items():
        try:
            value = int(count)
        except (TypeError, ValueError):
            value = None
        if value is None or isinstance(count, bool) or str(count).strip() != str(value) or not \
                0 < value <= MAX_ENTRIES_LIMIT:
            raise DatapathError("map_sizes: %s is %r; give max_entries as a whole number from 1 to %d."
                                % (name, count, MAX_ENTRIES_LIMIT))
        out[str(name)] = value
    return out


class LoadedProgram:
    """The requested program, loaded and verified but not yet in the datapath."""

    def __init__(self, object_path: str, program: str | None, prog_type: int, *, config: dict, pin_dir: str,
                 internal: dict | None = None, reuse: dict | None = None, offload_ifindex: int | None = None,
                 map_sizes: dict | None = None):
        self.obj = BpfObject(object_path)
        try:
            self.function = self.obj.select(program, prog_type)
            for name, count in sorted((map_sizes or {}).items()):  # before the definitions are compared
                if name in (reuse or {}):
                    raise DatapathError("map_sizes names map %r, which the chain owns; leave it out." % name)
                self.obj.set_max_entries(name, count)
            self.sizes = dict(map_sizes or {})
            defs = self.obj.maps()
            self.defined = set(defs)
            write_config(self.obj, config, internal)
            reuse = {n: fd for n, fd in (reuse or {}).items() if n in defs}
            for name, fd in reuse.items():
                self.obj.reuse_map(name, fd)
            self.reused, self.recreated, self.before = [], [], {}
            for name, definition in sorted(defs.items()):
                if name in reuse:
                    continue
                fd = bpffs.get(os.path.join(pin_dir, "maps", name))
                if fd is None:
                    continue
                try:
                    info = libbpf.map_info(fd)
                    if all(info[k] == definition[k] for k in definition):
                        self.obj.reuse_map(name, fd)
                        self.reused.append(name)
                    else:
                        self.recreated.append(name)
                        self.before[name] = info
                finally:
                    os.close(fd)
            self.map_names = sorted(n for n in defs if n not in reuse)
            if offload_ifindex is not None:
                self.obj.set_ifindex(offload_ifindex)
            self.fd = self._load()
        except Exception:
            self.obj.close()
            raise

    def _load(self) -> int:
        """Load; a map the kernel refuses to create at a size asked for in map_sizes is named in one sentence."""
        try:
            return self.obj.load()
        except DatapathError as exc:
            for name, count in sorted(self.sizes.items()):
                said = "map '%s': failed to create: " % name[:15]
                line = next((ln for ln in (exc.detail or "").splitlines() if said in ln), None)
                if line:
                    reason = line.split(said, 1)[1].rsplit("(", 1)[0].strip()
                    raise DatapathError(
                        "the kernel refused to create map %s with max_entries %d (%s); give a smaller size in "
                        "map_sizes (or raise the memory limit for BPF); nothing was changed."
                        % (name, count, reason), detail=exc.detail) from None
            raise

    @property
    def fillable(self) -> LoadedProgram:
        """The program whose new maps make-before-break fills (carry.py)."""
        return self

    def size_changes(self) -> dict:
        """{map: {before, after}} of the maps whose max_entries this version changes."""
        defs = self.obj.maps()
        return {n: {"before": info["max_entries"], "after": defs[n]["max_entries"]}
                for n, info in sorted(self.before.items()) if info["max_entries"] != defs[n]["max_entries"]}

    def close(self) -> None:
        self.obj.close()

    def pin(self, pin_path: str, index_path: str) -> None:
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

    def map_paths(self, pin_path: str) -> dict[str, str]:
        return {n: os.path.join(pin_path, "maps", n) for n in self.map_names}
