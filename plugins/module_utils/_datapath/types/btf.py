"""BTF to codecs: the one place that turns a BTF type id (a map's key or value, a `.rodata` global) into a Codec."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ctypes

from ..kernel import libbpf
from .codecs import (
    AddressCodec,
    ArrayCodec,
    BoolCodec,
    CharArrayCodec,
    CidrCodec,
    Codec,
    HexCodec,
    IntCodec,
    MacCodec,
    PortCodec,
    PortRuleCodec,
    ProtoCodec,
    StructCodec,
    WrappedAddressCodec,
    is_padding,
)

PROTO_FIELDS = ("proto", "protocol", "l4_proto", "ip_proto")
PORT_FIELDS = ("port", "dport", "sport")
_MODIFIERS = (libbpf.BTF_KIND_CONST, libbpf.BTF_KIND_VOLATILE, libbpf.BTF_KIND_RESTRICT,
              libbpf.BTF_KIND_TYPEDEF, libbpf.BTF_KIND_TYPE_TAG)


def _after(ptr, cls, index=0):
    """The index-th record of type cls that follows a struct btf_type."""
    addr = ctypes.cast(ptr, ctypes.c_void_p).value + ctypes.sizeof(libbpf.BtfType)
    return cls.from_address(addr + index * ctypes.sizeof(cls))


class Unsupported(Codec):
    """A type no codec writes (pointers, unions of unnamed parts...): refused with its C name."""

    def __init__(self, size, ctype):
        self.size = size
        self.name = ctype

    def describe(self) -> str:
        return "a value of C type %s, which cannot be set; use an integer, bool, enum, integer array or char array" \
            % self.name

    def encode(self, value: object) -> bytes:
        raise ValueError(self.describe())

    def decode(self, raw: bytes) -> str:
        return bytes(raw).hex()


class Btf:
    """A BTF handle: a map's, loaded from the kernel by id (freed on exit), or an open object's (borrowed)."""

    def __init__(self, btf_id: int = 0, handle=None):
        self.lib = libbpf.lib()
        self.owned = handle is None
        self.handle = handle if handle is not None else (
            self.lib.btf__load_from_kernel_by_id(btf_id) if btf_id else None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.owned and self.handle:
            self.lib.btf__free(self.handle)
        self.handle = None

    def name(self, off: int) -> str:
        return self.lib.btf__name_by_offset(self.handle, off).decode()

    def _strip(self, type_id):
        """(the type under const/volatile/typedefs, the typedef names passed on the way)."""
        typedefs = []
        t = self.lib.btf__type_by_id(self.handle, type_id)
        while t.contents.kind in _MODIFIERS:
            if t.contents.kind == libbpf.BTF_KIND_TYPEDEF:
                typedefs.append(self.name(t.contents.name_off))
            t = self.lib.btf__type_by_id(self.handle, t.contents.size_or_type)
        return t, typedefs

    def codec(self, type_id: int, field: str = "") -> Codec | None:
        """The codec of type_id; field (a struct member's or variable's name) picks addresses, ports, protocols.

        None when there is no BTF; Unsupported (which refuses every value) for
        types nothing can write.
        """
        if not self.handle or not type_id:
            return None
        t, typedefs = self._strip(type_id)
        btf_kind, size = t.contents.kind, t.contents.size_or_type
        cname = typedefs[0] if typedefs else self.name(t.contents.name_off)
        if btf_kind == libbpf.BTF_KIND_INT:
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
        if btf_kind == libbpf.BTF_KIND_ENUM:
            members = {}
            for i in range(t.contents.vlen):
                rec = _after(t, ctypes.c_uint32 * 2, i)
                members[self.name(rec[0])] = ctypes.c_int32(rec[1]).value
            return IntCodec(size, signed=True, name="enum %s" % cname if cname else "enum", enum=members)
        if btf_kind == libbpf.BTF_KIND_ARRAY:
            return self._array(type_id, t, field)
        if btf_kind == libbpf.BTF_KIND_STRUCT:
            return self._struct(t, size)
        total = self.lib.btf__resolve_size(self.handle, type_id)
        if btf_kind == libbpf.BTF_KIND_UNION:
            return HexCodec(size)
        return Unsupported(max(total, 0), cname or "BTF kind %d" % btf_kind)

    def _array(self, type_id, t, field):
        total = self.lib.btf__resolve_size(self.handle, type_id)
        if total in (4, 16) and _looks_like_address(field):
            return AddressCodec(4 if total == 4 else 6)
        if total == 6 and "mac" in field.lower():
            return MacCodec()
        arr = _after(t, libbpf.BtfArray)
        elem, _typedefs = self._strip(arr.type)
        if elem.contents.kind == libbpf.BTF_KIND_INT and elem.contents.size_or_type == 1:
            if self.name(elem.contents.name_off) == "char":
                return CharArrayCodec(total)
            return HexCodec(total)
        item = self.codec(arr.type)
        if arr.nelems and isinstance(item, IntCodec):
            return ArrayCodec(item, arr.nelems)
        return HexCodec(total)

    def _struct(self, t, size):
        fields = []
        for i in range(t.contents.vlen):
            member = _after(t, libbpf.BtfMember, i)
            if t.contents.info >> 31 and member.offset >> 24:  # bitfield: not writable by name
                return HexCodec(size)
            fname = self.name(member.name_off)
            member_codec = self.codec(member.type, fname)
            if member_codec is None or isinstance(member_codec, Unsupported) or not fname:
                return HexCodec(size)
            fields.append((fname, (member.offset & 0xFFFFFF) // 8, member_codec))
        name = "struct " + self.name(t.contents.name_off) if t.contents.name_off else "struct"
        return StructCodec(size, fields, name)

    def section_vars(self, section: str) -> dict:
        """{variable name: (offset, Codec)} of a data section such as `.rodata`."""
        sec_id = self.lib.btf__find_by_name_kind(self.handle, section.encode(), libbpf.BTF_KIND_DATASEC) \
            if self.handle else -1
        if sec_id < 0:
            return {}
        sec = self.lib.btf__type_by_id(self.handle, sec_id)
        out = {}
        for i in range(sec.contents.vlen):
            info = _after(sec, libbpf.BtfVarSecinfo, i)
            var = self.lib.btf__type_by_id(self.handle, info.type)
            if var.contents.kind != libbpf.BTF_KIND_VAR:
                continue
            name = self.name(var.contents.name_off)
            out[name] = (info.offset, self.codec(var.contents.size_or_type, name))  # *_saddr: an address
        return out


def lpm_codec(codec: Codec | None) -> Codec | None:
    """An LPM key struct {prefixlen; data} becomes a CIDR codec, {prefixlen; proto; pad; port} a port rule."""
    if not isinstance(codec, StructCodec) or not codec.fields or codec.fields[0][0] != "prefixlen":
        return codec
    if len(codec.fields) == 2:
        data = codec.fields[1][2]
        if data.size in (4, 16):
            return CidrCodec(4 if data.size == 4 else 6, codec.size)
    layout = [(offset, type(field_codec)) for fname, offset, field_codec in codec.fields if not is_padding(fname)]
    if codec.size == 8 and layout == [(0, IntCodec), (4, ProtoCodec), (6, PortCodec)]:
        return PortRuleCodec()
    return codec


def key_codec(codec: Codec | None, lpm: bool) -> Codec | None:
    """A map key's codec as people write the key: an LPM key as a CIDR or a port rule (lpm_codec), a struct that
    only wraps one address as that address (the firewall's deny lists: `203.0.113.7`, not {addr: ...})."""
    if lpm:
        return lpm_codec(codec)
    if isinstance(codec, StructCodec) and len(codec.fields) == 1:
        fname, offset, inner = codec.fields[0]
        if offset == 0 and isinstance(inner, AddressCodec) and inner.size == codec.size:
            return WrappedAddressCodec(inner.version, fname)
    return codec


def _looks_like_address(field):
    name = field.lower()
    return name.endswith("addr") or name in ("ip", "ip4", "ip6", "src", "dst", "saddr", "daddr", "addr", "data")
