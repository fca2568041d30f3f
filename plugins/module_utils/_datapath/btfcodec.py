# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Codecs for map keys and values from the BTF the kernel keeps with a map."""

from __future__ import annotations

import ctypes

from . import libbpf
from .codec import (
    AddressCodec,
    BoolCodec,
    CidrCodec,
    HexCodec,
    IntCodec,
    MacCodec,
    PortCodec,
    PortRuleCodec,
    ProtoCodec,
    StructCodec,
    is_padding,
)

PROTO_FIELDS = ("proto", "protocol", "l4_proto", "ip_proto")
PORT_FIELDS = ("port", "dport", "sport")
_MODIFIERS = (libbpf.BTF_KIND_CONST, libbpf.BTF_KIND_VOLATILE, libbpf.BTF_KIND_RESTRICT,
              libbpf.BTF_KIND_TYPEDEF, libbpf.BTF_KIND_TYPE_TAG)


def _after(ptr, cls, index=0):
    addr = ctypes.cast(ptr, ctypes.c_void_p).value + ctypes.sizeof(libbpf.BtfType)
    return cls.from_address(addr + index * ctypes.sizeof(cls))


class Btf:
    """A map's BTF, loaded from the kernel by id; use as a context manager."""

    def __init__(self, btf_id):
        self.lib = libbpf.lib()
        self.handle = self.lib.btf__load_from_kernel_by_id(btf_id) if btf_id else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.handle:
            self.lib.btf__free(self.handle)
            self.handle = None

    def name(self, off):
        return self.lib.btf__name_by_offset(self.handle, off).decode()

    def codec(self, type_id, field=""):
        """A codec for type_id (None when the type cannot be written)."""
        if not self.handle or not type_id:
            return None
        typedefs = []
        t = self.lib.btf__type_by_id(self.handle, type_id)
        while t.contents.kind in _MODIFIERS:
            if t.contents.kind == libbpf.BTF_KIND_TYPEDEF:
                typedefs.append(self.name(t.contents.name_off))
            t = self.lib.btf__type_by_id(self.handle, t.contents.size_or_type)
        kind, size = t.contents.kind, t.contents.size_or_type
        if kind == libbpf.BTF_KIND_INT:
            enc = (_after(t, ctypes.c_uint32).value >> 24) & 0x0F
            if enc & libbpf.BTF_INT_BOOL:
                return BoolCodec(size)
            big = any(td.startswith("__be") for td in typedefs)
            if big and size == 4 and _looks_like_address(field):
                return AddressCodec(4)
            if size == 1 and field.lower() in PROTO_FIELDS:
                return ProtoCodec(1)  # writes and reads tcp, udp, icmp
            if big and size == 2 and field.lower() in PORT_FIELDS:
                return PortCodec()
            return IntCodec(size, signed=bool(enc & libbpf.BTF_INT_SIGNED), big_endian=big,
                            name=typedefs[0] if typedefs else None)
        if kind == libbpf.BTF_KIND_ENUM:
            members = {}
            for i in range(t.contents.vlen):
                rec = _after(t, ctypes.c_uint32 * 2, i)
                members[self.name(rec[0])] = ctypes.c_int32(rec[1]).value
            return IntCodec(size, signed=True, name="enum", enum=members)
        if kind == libbpf.BTF_KIND_ARRAY:
            total = self.lib.btf__resolve_size(self.handle, type_id)
            if total in (4, 16) and _looks_like_address(field):
                return AddressCodec(4 if total == 4 else 6)
            if total == 6 and "mac" in field.lower():
                return MacCodec()
            return HexCodec(total)
        if kind == libbpf.BTF_KIND_STRUCT:
            fields = []
            for i in range(t.contents.vlen):
                member = _after(t, libbpf.BtfMember, i)
                if t.contents.info >> 31 and member.offset >> 24:  # bitfield: not writable by name
                    return HexCodec(size)
                fname = self.name(member.name_off)
                codec = self.codec(member.type, fname)
                if codec is None or not fname:
                    return HexCodec(size)
                fields.append((fname, (member.offset & 0xFFFFFF) // 8, codec))
            name = "struct " + self.name(t.contents.name_off) if t.contents.name_off else "struct"
            return StructCodec(size, fields, name)
        if kind == libbpf.BTF_KIND_UNION:
            return HexCodec(size)
        return None


def lpm_codec(codec):
    """An LPM key struct {prefixlen; data} becomes a CIDR codec, {prefixlen; proto; pad; port} a port rule."""
    if not isinstance(codec, StructCodec) or not codec.fields or codec.fields[0][0] != "prefixlen":
        return codec
    if len(codec.fields) == 2:
        data = codec.fields[1][2]
        if data.size == 4 or (data.size == 16):
            return CidrCodec(4 if data.size == 4 else 6, codec.size)
    layout = [(offset, type(field_codec)) for fname, offset, field_codec in codec.fields if not is_padding(fname)]
    if codec.size == 8 and layout == [(0, IntCodec), (4, ProtoCodec), (6, PortCodec)]:
        return PortRuleCodec()
    return codec


def _looks_like_address(field):
    name = field.lower()
    return name.endswith("addr") or name in ("ip", "ip4", "ip6", "src", "dst", "saddr", "daddr", "addr", "data")
