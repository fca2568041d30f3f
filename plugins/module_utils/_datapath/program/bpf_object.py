"""One BPF object file opened through libbpf: choose its program, see its maps, reuse pinned ones, load.

A BpfObject wraps one bpf_object: it picks the program to load, writes
`config` values into `.rodata` (types read from the object's BTF), lets the
caller hand in map file descriptors to reuse, and loads. A verifier
rejection becomes a DatapathError carrying the tail of the verifier log.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ctypes
import os

from ..errors import DatapathError
from ..kernel import libbpf
from ..types.btf import Btf
from .verifier import load_error

PROG_TYPE_NAMES = {libbpf.PROG_TYPE_XDP: "xdp", libbpf.PROG_TYPE_SCHED_CLS: "tc (sched_cls)"}


class BpfObject:
    """One opened BPF object file; use as a context manager."""

    def __init__(self, path):
        self.path = path
        self._lib = libbpf.lib()
        libbpf.take_messages()
        self._obj = self._lib.bpf_object__open_file(path.encode(), None)
        if not self._obj:
            msg = libbpf.take_messages().strip().splitlines()
            reason = msg[-1] if msg else os.strerror(ctypes.get_errno() or 22)
            raise DatapathError(
                "%s is not a loadable BPF object (%s); pass a file compiled with clang -target bpf."
                % (path, reason.replace("libbpf: ", "")))
        self.prog = None
        self.loaded = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._obj:
            self._lib.bpf_object__close(self._obj)
            self._obj = None

    # programs ---------------------------------------------------------
    def _programs(self):
        prog = self._lib.bpf_object__next_program(self._obj, None)
        while prog:
            yield prog
            prog = self._lib.bpf_object__next_program(self._obj, prog)

    def programs(self) -> list[tuple[str, int]]:
        """[(function name, program type)] of every program in the object."""
        return [(self._lib.bpf_program__name(p).decode(), self._lib.bpf_program__type(p))
                for p in self._programs()]

    def select(self, name: str | None, prog_type: int) -> str:
        """Choose the program to load (the only one of prog_type when name is None)."""
        type_name = PROG_TYPE_NAMES.get(prog_type, str(prog_type))
        progs = list(self._programs())
        if name:
            found = [p for p in progs if self._lib.bpf_program__name(p).decode() == name]
            if not found:
                names = ", ".join(n for n, _type in self.programs()) or "none"
                raise DatapathError(
                    "function %r is not a BPF program in %s (programs there: %s); check the program option."
                    % (name, self.path, names))
            chosen = found[0]
            if self._lib.bpf_program__type(chosen) != prog_type:
                raise DatapathError(
                    "program %r in %s is not a %s program (its section is %s); use a program of type %s."
                    % (name, self.path, type_name,
                       self._lib.bpf_program__section_name(chosen).decode(), type_name))
        else:
            typed = [p for p in progs if self._lib.bpf_program__type(p) == prog_type]
            if not typed:
                have = ", ".join("%s, of type %s" % (n, PROG_TYPE_NAMES.get(t, "%d" % t)) for n, t in self.programs())
                raise DatapathError("%s holds no %s program (it has %s); use an object with a %s program."
                                    % (self.path, type_name, have or "no programs", type_name))
            if len(typed) != 1:
                names = ", ".join(self._lib.bpf_program__name(p).decode() for p in typed) or "none"
                raise DatapathError(
                    "%s holds %d %s programs (%s); name the one to load with the program option."
                    % (self.path, len(typed), type_name, names))
            chosen = typed[0]
        for p in progs:
            self._lib.bpf_program__set_autoload(p, p == chosen)
        self.prog = chosen
        return self._lib.bpf_program__name(chosen).decode()

    # maps -------------------------------------------------------------
    def _maps(self):
        m = self._lib.bpf_object__next_map(self._obj, None)
        while m:
            yield m
            m = self._lib.bpf_object__next_map(self._obj, m)

    def _map(self, name):
        for m in self._maps():
            if self._lib.bpf_map__name(m).decode() == name:
                return m
        return None

    def maps(self) -> dict[str, dict]:
        """Definitions of the object's own (non-internal) maps, by name."""
        out = {}
        for m in self._maps():
            if self._lib.bpf_map__is_internal(m):
                continue
            name = self._lib.bpf_map__name(m).decode()
            out[name] = map_definition(
                self._lib.bpf_map__type(m), self._lib.bpf_map__key_size(m),
                self._lib.bpf_map__value_size(m), self._lib.bpf_map__max_entries(m),
                self._lib.bpf_map__map_flags(m))
        return out

    def reuse_map(self, name: str, fd: int) -> None:
        libbpf.check(self._lib.bpf_map__reuse_fd(self._map(name), fd), "reuse map %s" % name)

    def set_max_entries(self, name: str, count: int) -> None:
        """Size a map before load (libbpf bpf_map__set_max_entries: between open and load)."""
        m = self._map(name)
        if m is None or self._lib.bpf_map__is_internal(m):
            names = ", ".join(sorted(self.maps())) or "none"
            raise DatapathError("map_sizes names map %r, which %s does not have (its maps: %s); check the name."
                                % (name, self.path, names))
        libbpf.check(self._lib.bpf_map__set_max_entries(m, count), "size map %s" % name)

    def map_fd(self, name: str) -> int:
        return self._lib.bpf_map__fd(self._map(name))

    # .rodata configuration -------------------------------------------
    def rodata(self) -> tuple[int | None, int]:
        """(writable initial bytes of `.rodata` as a ctypes address, its size), or (None, 0) when there is none."""
        for m in self._maps():
            if self._lib.bpf_map__is_internal(m) and self._lib.bpf_map__name(m).decode().endswith(".rodata"):
                size = ctypes.c_size_t(0)
                ptr = self._lib.bpf_map__initial_value(m, ctypes.byref(size))
                return ptr, size.value
        return None, 0

    def btf(self) -> Btf:
        """The object's BTF, borrowed for as long as the object is open (a Btf with no handle when it has none)."""
        return Btf(handle=self._lib.bpf_object__btf(self._obj) or None)

    # loading ----------------------------------------------------------
    def set_ifindex(self, ifindex: int) -> None:
        """Offload: bind the program and its maps to a device before load."""
        self._lib.bpf_program__set_ifindex(self.prog, ifindex)
        for m in self._maps():
            self._lib.bpf_map__set_ifindex(m, ifindex)

    def load(self) -> int:
        libbpf.take_messages()
        ret = self._lib.bpf_object__load(self._obj)
        messages = libbpf.take_messages()
        if ret < 0:
            raise load_error(self.path, self._lib.bpf_program__name(self.prog).decode(), -ret, messages)
        self.loaded = True
        return self.prog_fd

    @property
    def prog_fd(self) -> int:
        return self._lib.bpf_program__fd(self.prog)


BPF_F_RDONLY_PROG = 1 << 7
KERNEL_FLAGS = {14: BPF_F_RDONLY_PROG, 25: BPF_F_RDONLY_PROG}  # devmaps: the kernel adds it to every one it makes


def map_definition(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int) -> dict:
    """What decides whether a pinned map can serve a new version of a program (flags as the kernel keeps them)."""
    return {"type": map_type, "key_size": key_size, "value_size": value_size,
            "max_entries": max_entries, "flags": flags | KERNEL_FLAGS.get(map_type, 0)}
