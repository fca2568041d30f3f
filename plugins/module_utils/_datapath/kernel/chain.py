"""The XDP chain maps of one interface as the kernel holds them: root, program array, links; one update a step.

Mirrors files/bpf/include/wirespeed/chain.h: a program array of SLOTS slots
and a links array whose entry HEAD is read by the root. Every change here is
one map element update, and each leaves a valid chain behind it.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import struct

from . import bpffs, libbpf

SLOTS = 32
HEAD = SLOTS
END = SLOTS
PROGS_MAP = "ws_chain_progs"
LINKS_MAP = "ws_chain_links"
SLOT_VAR = "ws_chain_slot"
_KEY = struct.Struct("I")
_LINK = struct.Struct("II")


class Chain:
    """Open handles on an interface's pinned chain (root program and both maps)."""

    def __init__(self, root_fd, progs_fd, links_fd):
        self.root_fd = root_fd
        self.progs_fd = progs_fd
        self.links_fd = links_fd

    @classmethod
    def open_pinned(cls, bpffs_path: str, ifname: str) -> Chain | None:
        """The pinned chain of ifname, or None when there is none."""
        cdir = bpffs.chain_dir(bpffs_path, ifname)
        paths = [os.path.join(cdir, n) for n in ("root", "progs", "links")]
        if not all(os.path.exists(p) for p in paths):
            return None
        return cls(*(libbpf.obj_get(p) for p in paths))

    def close(self) -> None:
        for fd in (self.root_fd, self.progs_fd, self.links_fd):
            if fd is not None and fd >= 0:
                os.close(fd)
        self.root_fd = self.progs_fd = self.links_fd = None

    def pin(self, bpffs_path: str, ifname: str) -> None:
        cdir = bpffs.chain_dir(bpffs_path, ifname)
        for name, fd in (("progs", self.progs_fd), ("links", self.links_fd), ("root", self.root_fd)):
            bpffs.pin_replace(fd, os.path.join(cdir, name))

    # reading ----------------------------------------------------------
    def link(self, slot: int) -> tuple[int, int]:
        raw = libbpf.map_lookup(self.links_fd, _KEY.pack(slot), _LINK.size)
        return _LINK.unpack(raw) if raw else (END, 0)

    def prog_id(self, slot: int) -> int | None:
        raw = libbpf.map_lookup(self.progs_fd, _KEY.pack(slot), 4)
        return _KEY.unpack(raw)[0] if raw else None

    def order(self) -> list[tuple[int, int, int | None]]:
        """[(slot, priority, prog_id)] in the order packets walk them."""
        out, seen = [], set()
        slot = self.link(HEAD)[0]
        while slot < SLOTS and slot not in seen:
            seen.add(slot)
            nxt, prio = self.link(slot)
            out.append((slot, prio, self.prog_id(slot)))
            slot = nxt
        return out

    # writing: each call is one element update --------------------------
    def init_links(self) -> None:
        """A new links map is all zeros ("slot 0 next"); make every entry, HEAD too, point to END."""
        for slot in range(SLOTS + 1):
            self.set_link(slot, END, 0)

    def set_link(self, slot: int, nxt: int, priority: int) -> None:
        libbpf.map_update(self.links_fd, _KEY.pack(slot), _LINK.pack(nxt, priority))

    def set_prog(self, slot: int, prog_fd: int) -> None:
        libbpf.map_update(self.progs_fd, _KEY.pack(slot), _KEY.pack(prog_fd))

    def clear_prog(self, slot: int) -> None:
        libbpf.map_delete(self.progs_fd, _KEY.pack(slot))

    def predecessor(self, slot: int) -> int | None:
        prev = HEAD
        for s, _prio, _prog in self.order():
            if s == slot:
                return prev
            prev = s
        return None

    def insert(self, slot: int, prog_fd: int, priority: int, after: int) -> None:
        """Make slot run right after `after` (a slot or HEAD); the last update publishes it."""
        nxt = self.link(after)[0]
        self.set_link(slot, nxt, priority)
        self.set_prog(slot, prog_fd)
        prev_prio = self.link(after)[1] if after != HEAD else 0
        self.set_link(after, slot, prev_prio)

    def remove(self, slot: int) -> None:
        """Take slot out of the walk, then empty it."""
        prev = self.predecessor(slot)
        if prev is not None:
            nxt = self.link(slot)[0]
            prev_prio = self.link(prev)[1] if prev != HEAD else 0
            self.set_link(prev, nxt, prev_prio)
        self.clear_prog(slot)
        self.set_link(slot, END, 0)
