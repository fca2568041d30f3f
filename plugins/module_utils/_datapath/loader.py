# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Open, configure and load BPF objects through libbpf.

A BpfObject wraps one bpf_object: it picks the program to load, writes
`config` values into `.rodata` (types read from the object's BTF), lets the
caller hand in map file descriptors to reuse, and loads. A verifier
rejection becomes a DatapathError carrying the tail of the verifier log.
"""

from __future__ import annotations

import ctypes
import os
import struct

from . import libbpf
from .errors import DatapathError

RESERVED_CONFIG_PREFIX = "ws_chain"
PROG_TYPE_NAMES = {libbpf.PROG_TYPE_XDP: "xdp", libbpf.PROG_TYPE_SCHED_CLS: "tc (sched_cls)"}


class VarSpec:
    """A `const volatile` global of `.rodata`: where it lives and how to encode it."""

    def __init__(self, name, offset, size, kind, signed=False, big_endian=False, enum=None, ctype="", item=None):
        self.name = name
        self.offset = offset
        self.size = size
        self.kind = kind  # 'int', 'bool', 'enum', 'char[]', 'int[]'
        self.signed = signed
        self.big_endian = big_endian
        self.enum = enum or {}
        self.ctype = ctype
        self.item = item  # int[]: the VarSpec of one element

    def describe(self):
        if self.kind == "bool":
            return "true or false (bool)"
        if self.kind == "char[]":
            return "a string of at most %d bytes (%s)" % (self.size - 1, self.ctype)
        if self.kind == "int[]":
            return "a list of at most %d integers from %d to %d (%s); the entries left out are 0" % (
                (self.size // self.item.size,) + self.item.bounds() + (self.ctype,))
        text = "an integer from %d to %d (%s)" % (self.bounds() + (self.ctype,))
        if self.enum:
            text += " or one of %s" % ", ".join(sorted(self.enum))
        return text

    def bounds(self):
        bits = self.size * 8
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)

    def encode(self, value):
        """Return the bytes for value, or raise ValueError."""
        if self.kind == "int[]":
            if not isinstance(value, (list, tuple)) or len(value) * self.item.size > self.size:
                raise ValueError
            return b"".join(self.item.encode(v) for v in value).ljust(self.size, b"\0")
        if self.kind == "char[]":
            if not isinstance(value, str):
                raise ValueError
            raw = value.encode()
            if len(raw) >= self.size:
                raise ValueError
            return raw.ljust(self.size, b"\0")
        if self.kind == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                value = value.lower() in ("true", "yes", "1")
            if not isinstance(value, bool) and value not in (0, 1):
                raise ValueError
            return bytes([1 if value else 0]).ljust(self.size, b"\0")
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str):
            if value in self.enum:
                value = self.enum[value]
            else:
                value = int(value.strip(), 0)
        if not isinstance(value, int):
            raise ValueError
        order = "big" if self.big_endian else "little"
        return value.to_bytes(self.size, order, signed=self.signed)


def _read_after(ptr, cls, index=0):
    """Read the index-th record of type cls that follows a struct btf_type."""
    addr = ctypes.cast(ptr, ctypes.c_void_p).value + ctypes.sizeof(libbpf.BtfType)
    return cls.from_address(addr + index * ctypes.sizeof(cls))


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

    def close(self):
        if self._obj:
            self._lib.bpf_object__close(self._obj)
            self._obj = None

    # programs ---------------------------------------------------------
    def _programs(self):
        prog = self._lib.bpf_object__next_program(self._obj, None)
        while prog:
            yield prog
            prog = self._lib.bpf_object__next_program(self._obj, prog)

    def programs(self):
        """[(function name, program type)] of every program in the object."""
        return [(self._lib.bpf_program__name(p).decode(), self._lib.bpf_program__type(p))
                for p in self._programs()]

    def select(self, name, prog_type):
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

    def maps(self):
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

    def reuse_map(self, name, fd):
        libbpf.check(self._lib.bpf_map__reuse_fd(self._map(name), fd), "reuse map %s" % name)

    def map_fd(self, name):
        return self._lib.bpf_map__fd(self._map(name))

    # .rodata configuration -------------------------------------------
    def _rodata(self):
        for m in self._maps():
            if self._lib.bpf_map__is_internal(m) and self._lib.bpf_map__name(m).decode().endswith(".rodata"):
                return m
        return None

    def config_vars(self):
        """The `.rodata` globals that config can set, by name."""
        btf = self._lib.bpf_object__btf(self._obj)
        if not btf or not self._rodata():
            return {}
        sec_id = self._lib.btf__find_by_name_kind(btf, b".rodata", libbpf.BTF_KIND_DATASEC)
        if sec_id < 0:
            return {}
        sec = self._lib.btf__type_by_id(btf, sec_id)
        out = {}
        for i in range(sec.contents.vlen):
            info = _read_after(sec, libbpf.BtfVarSecinfo, i)
            var = self._lib.btf__type_by_id(btf, info.type)
            if var.contents.kind != libbpf.BTF_KIND_VAR:
                continue
            name = self._lib.btf__name_by_offset(btf, var.contents.name_off).decode()
            spec = self._var_spec(btf, name, var.contents.size_or_type, info)
            if spec is not None:
                out[name] = spec
        return out

    def _resolve(self, btf, type_id):
        """(the type under const/volatile/typedefs, the typedef names passed on the way)."""
        typedefs = []
        t = self._lib.btf__type_by_id(btf, type_id)
        while t.contents.kind in (libbpf.BTF_KIND_CONST, libbpf.BTF_KIND_VOLATILE, libbpf.BTF_KIND_RESTRICT,
                                  libbpf.BTF_KIND_TYPEDEF, libbpf.BTF_KIND_TYPE_TAG):
            if t.contents.kind == libbpf.BTF_KIND_TYPEDEF:
                typedefs.append(self._lib.btf__name_by_offset(btf, t.contents.name_off).decode())
            t = self._lib.btf__type_by_id(btf, t.contents.size_or_type)
        return t, typedefs

    def _var_spec(self, btf, name, type_id, info):
        t, typedefs = self._resolve(btf, type_id)
        kind = t.contents.kind
        ctype = typedefs[0] if typedefs else self._lib.btf__name_by_offset(btf, t.contents.name_off).decode()
        if kind == libbpf.BTF_KIND_INT:
            return self._int_spec(t, typedefs, name, info.offset, info.size, ctype)
        if kind == libbpf.BTF_KIND_ENUM:
            members = {}
            for i in range(t.contents.vlen):
                rec = _read_after(t, ctypes.c_uint32 * 2, i)
                members[self._lib.btf__name_by_offset(btf, rec[0]).decode()] = ctypes.c_int32(rec[1]).value
            return VarSpec(name, info.offset, info.size, "enum", signed=True, enum=members,
                           ctype="enum " + ctype if ctype else "enum")
        if kind == libbpf.BTF_KIND_ARRAY:
            arr = _read_after(t, libbpf.BtfArray)
            elem, elem_typedefs = self._resolve(btf, arr.type)
            if elem.contents.kind == libbpf.BTF_KIND_INT and elem.contents.size_or_type == 1:
                return VarSpec(name, info.offset, info.size, "char[]", ctype="char[%d]" % arr.nelems)
            if elem.contents.kind == libbpf.BTF_KIND_INT and arr.nelems:
                elem_ctype = elem_typedefs[0] if elem_typedefs else \
                    self._lib.btf__name_by_offset(btf, elem.contents.name_off).decode()
                item = self._int_spec(elem, elem_typedefs, name, 0, info.size // arr.nelems, elem_ctype)
                if item.kind == "int":
                    return VarSpec(name, info.offset, info.size, "int[]", item=item,
                                   ctype="%s[%d]" % (elem_ctype, arr.nelems))
        return VarSpec(name, info.offset, info.size, "unsupported", ctype=ctype or "kind %d" % kind)

    @staticmethod
    def _int_spec(t, typedefs, name, offset, size, ctype):
        encoding = (_read_after(t, ctypes.c_uint32).value >> 24) & 0x0F
        if encoding & libbpf.BTF_INT_BOOL:
            return VarSpec(name, offset, size, "bool", ctype=ctype)
        big = any(td.startswith("__be") for td in typedefs)
        return VarSpec(name, offset, size, "int", signed=bool(encoding & libbpf.BTF_INT_SIGNED),
                       big_endian=big, ctype=ctype)

    def set_config(self, config, internal=None):
        """Write config (user values) and internal (engine values) into .rodata."""
        config = dict(config or {})
        internal = dict(internal or {})
        specs = self.config_vars()
        for key in config:
            if key.startswith(RESERVED_CONFIG_PREFIX):
                raise DatapathError("config key %r is reserved: wirespeed sets it itself; remove it from config." % key)
        unknown = sorted(k for k in config if k not in specs)
        if unknown:
            known = ", ".join(sorted(k for k in specs if not k.startswith(RESERVED_CONFIG_PREFIX))) or "none"
            raise DatapathError(
                "config key %r is not a const volatile global in %s (settable here: %s)."
                % (unknown[0], self.path, known))
        values = dict(config)
        values.update({k: v for k, v in internal.items() if k in specs})
        if not values:
            return
        size = ctypes.c_size_t(0)
        ptr = self._lib.bpf_map__initial_value(self._rodata(), ctypes.byref(size))
        for key in sorted(values):
            spec = specs[key]
            if spec.kind == "unsupported":
                raise DatapathError("config key %r has C type %s, which config cannot set; use an integer, bool, "
                                    "enum, integer array or char array global." % (key, spec.ctype))
            try:
                raw = spec.encode(values[key])
            except (ValueError, OverflowError, TypeError) as exc:
                raise DatapathError(
                    "config key %r must be %s; got %r." % (key, spec.describe(), values[key])) from exc
            ctypes.memmove(ptr + spec.offset, raw, len(raw))

    # loading ----------------------------------------------------------
    def set_ifindex(self, ifindex):
        """Offload: bind the program and its maps to a device before load."""
        self._lib.bpf_program__set_ifindex(self.prog, ifindex)
        for m in self._maps():
            self._lib.bpf_map__set_ifindex(m, ifindex)

    def load(self):
        libbpf.take_messages()
        ret = self._lib.bpf_object__load(self._obj)
        messages = libbpf.take_messages()
        if ret < 0:
            raise load_error(self.path, self._lib.bpf_program__name(self.prog).decode(), -ret, messages)
        self.loaded = True
        return self.prog_fd

    @property
    def prog_fd(self):
        return self._lib.bpf_program__fd(self.prog)


def map_definition(map_type, key_size, value_size, max_entries, flags):
    return {"type": map_type, "key_size": key_size, "value_size": value_size,
            "max_entries": max_entries, "flags": flags}


def verifier_log(messages):
    """The verifier's own lines out of libbpf's output, or []."""
    if "-- BEGIN PROG LOAD LOG --" not in messages:
        return []
    body = messages.split("-- BEGIN PROG LOAD LOG --", 1)[1].split("-- END PROG LOAD LOG --", 1)[0]
    return [line for line in body.splitlines() if line.strip()]


def load_error(path, prog_name, err, messages):
    log = verifier_log(messages)
    if log:
        tail = log[-20:]
        reason = next((line for line in reversed(log)
                       if not line.startswith(("processed ", "verification time", "stack depth"))), log[-1])
        return DatapathError("the kernel verifier rejected program %r from %s: %s"
                             % (prog_name, path, reason.strip()), detail="\n".join(tail))
    lines = [line.replace("libbpf: ", "") for line in messages.splitlines() if line.strip()]
    reason = lines[-1] if lines else os.strerror(err)
    return DatapathError("loading program %r from %s failed: %s" % (prog_name, path, reason),
                         detail="\n".join(lines[-20:]))


def read_rodata(prog_fd):
    """The live `.rodata` bytes of a loaded program (b'' when it has none)."""
    for map_id in libbpf.prog_info(prog_fd)["map_ids"]:
        fd = libbpf.map_fd_by_id(map_id)
        try:
            info = libbpf.map_info(fd)
            if info["name"].endswith(".rodata") and info["max_entries"] == 1:
                value = libbpf.map_lookup(fd, struct.pack("I", 0), info["value_size"])
                return value or b""
        finally:
            os.close(fd)
    return b""


def program_maps(prog_fd):
    """{kernel map name: (map id, definition)} of a loaded program, internal maps excluded."""
    out = {}
    for map_id in libbpf.prog_info(prog_fd)["map_ids"]:
        fd = libbpf.map_fd_by_id(map_id)
        try:
            info = libbpf.map_info(fd)
        finally:
            os.close(fd)
        if "." in info["name"]:
            continue
        out[info["name"]] = (map_id, map_definition(info["type"], info["key_size"], info["value_size"],
                                                    info["max_entries"], info["flags"]))
    return out
