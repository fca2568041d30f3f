"""Codecs: typed values <-> the exact bytes of map keys, map values and `.rodata` globals, and back to text.

A codec turns what an operator writes (`203.0.113.7`, `2001:db8::/32`,
`22`, `tcp`, `aa:bb:cc:dd:ee:ff`, `eth1`, a dict of struct fields) into the
exact bytes of a map key or value, and renders bytes back the same way, so
diffs read `+ 203.0.113.7` rather than hex. Codecs come from an explicit
type name or from the map's BTF. Every refusal is a ValueError whose text
says what was expected.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct

from . import parse

LPM_KEY_PREFIX = struct.Struct("<I")
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "sctp": 132}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}


class Codec:
    """Base: fixed size; encode(value) -> bytes; decode(raw) -> value; text(raw) -> str."""

    name = "hex"
    size = 0

    def encode(self, value: object) -> bytes:
        raise NotImplementedError

    def decode(self, raw: bytes) -> object:
        raise NotImplementedError

    def text(self, raw: bytes) -> str:
        return str(self.decode(raw))

    sort_key = None  # listings sort by the raw bytes: numeric order for addresses in network order

    def encode_many(self, values: list) -> list[bytes]:
        return list(map(self.encode, values))

    def describe(self) -> str:
        """What encode() takes, as a phrase for error messages ("an integer from 0 to 65535 (__u16)")."""
        return "a %s value" % self.name


class IntCodec(Codec):
    def __init__(self, size, signed=False, big_endian=False, name=None, enum=None):
        self.size = size
        self.signed = signed
        self.order = "big" if big_endian else "little"
        self.name = name or ("%s%d" % ("s" if signed else "u", size * 8))
        self.enum = enum or {}

    def bounds(self) -> tuple[int, int]:
        bits = self.size * 8
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)

    def describe(self) -> str:
        text = "an integer from %d to %d (%s)" % (self.bounds() + (self.name,))
        if self.enum:
            text += " or one of %s" % ", ".join(sorted(self.enum))
        return text

    def encode(self, value: object) -> bytes:
        if isinstance(value, bool):
            if self.size != 1:  # a one-byte field is where C keeps a flag; a wider one wants a number
                raise ValueError("%s needs an integer, got %r" % (self.name, value))
            value = int(value)
        if isinstance(value, str):
            if value in self.enum:
                value = self.enum[value]
            else:
                try:
                    value = int(value.strip(), 0)
                except ValueError:
                    raise ValueError("%s needs an integer, got %r" % (self.name, value)) from None
        if not isinstance(value, int):
            raise ValueError("%s needs an integer, got %r" % (self.name, value))
        try:
            return value.to_bytes(self.size, self.order, signed=self.signed)
        except OverflowError:
            raise ValueError("%d does not fit %s (%d to %d)" % ((value, self.name) + self.bounds())) from None

    def decode(self, raw: bytes) -> int:
        return int.from_bytes(raw, self.order, signed=self.signed)

    def sort_key(self, raw: bytes) -> tuple[int]:
        return (int.from_bytes(raw, self.order, signed=self.signed),)


class BoolCodec(IntCodec):
    def __init__(self, size=1):
        super().__init__(size, name="bool")

    def describe(self) -> str:
        return "true or false (bool)"

    def encode(self, value: object) -> bytes:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            value = value.lower() in ("true", "yes", "1")
        if value not in (0, 1) or isinstance(value, float):
            raise ValueError("bool needs true or false, got %r" % (value,))
        return int(value).to_bytes(self.size, "little")

    def decode(self, raw: bytes) -> bool:
        return bool(int.from_bytes(raw, "little"))


class AddressCodec(Codec):
    """An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order."""

    def __init__(self, version):
        self.version = version
        self.size = 4 if version == 4 else 16
        self.name = "ipv%d" % version
        self.family = socket.AF_INET if version == 4 else socket.AF_INET6

    def describe(self) -> str:
        return "an IPv%d address" % self.version

    def encode_many(self, values: list) -> list[bytes]:
        try:  # a feed of 100k addresses: one C-level pass when all are well-formed
            return list(map(socket.inet_pton, itertools.repeat(self.family, len(values)), values))
        except (OSError, TypeError, ValueError):
            return list(map(self.encode, values))

    def encode(self, value: object) -> bytes:
        try:
            return socket.inet_pton(self.family, value)  # the fast, strict path
        except (OSError, TypeError, ValueError):
            pass
        try:
            addr = ipaddress.ip_address(str(value).strip())
        except ValueError:
            raise ValueError("%r is not an IP address" % (value,)) from None
        if addr.version != self.version:
            raise ValueError("an IPv%d address does not fit this IPv%d field" % (addr.version, self.version))
        return addr.packed

    def decode(self, raw: bytes) -> str:
        return socket.inet_ntop(self.family, bytes(raw))


class WrappedAddressCodec(AddressCodec):
    """A struct that wraps one address and nothing else (`struct {__u8 addr[16];}` as a map key): written and
    shown as the address; the struct's form ({addr: ...}) is taken too."""

    def __init__(self, version, field):
        super().__init__(version)
        self.field = field

    def encode(self, value: object) -> bytes:
        if isinstance(value, dict) and set(value) == {self.field}:
            value = value[self.field]
        return super().encode(value)


class CidrCodec(Codec):
    """An LPM-trie key: host-order u32 prefix length, then the address (and any padding)."""

    def __init__(self, version, size=None):
        self.version = version
        self.addr_size = 4 if version == 4 else 16
        self.size = size or 4 + self.addr_size
        self.name = "ipv%d_cidr" % version

    def describe(self) -> str:
        return "an IPv%d network in CIDR form" % self.version

    def encode_many(self, values: list) -> list[bytes]:
        """A list of 10k networks: "address/length" taken apart with inet_pton; anything else (and every refusal)
        goes through encode, which says what is wrong."""
        family = socket.AF_INET if self.version == 4 else socket.AF_INET6
        bits, pad = self.addr_size * 8, b"\0" * (self.size - 4 - self.addr_size)
        pack, out = LPM_KEY_PREFIX.pack, []
        for value in values:
            if isinstance(value, str):
                addr, sep, plen = value.partition("/")
                if sep and plen.isascii() and plen.isdigit() and len(plen) <= 3 and int(plen) <= bits:
                    try:
                        raw = socket.inet_pton(family, addr)
                    except (OSError, ValueError):
                        raw = None
                    if raw and not int.from_bytes(raw, "big") & ((1 << (bits - int(plen))) - 1):
                        out.append(pack(int(plen)) + raw + pad)
                        continue
            out.append(self.encode(value))
        return out

    def encode(self, value: object) -> bytes:
        text = str(value).strip()
        try:
            net = parse.network(text)
        except parse.HostBits:
            raise
        except ValueError:
            raise ValueError("%r is not a CIDR network" % (value,)) from None
        if net.version != self.version:
            raise ValueError("an IPv%d network does not fit this IPv%d LPM key" % (net.version, self.version))
        raw = LPM_KEY_PREFIX.pack(net.prefixlen) + net.network_address.packed
        return raw.ljust(self.size, b"\0")

    def sort_key(self, raw: bytes) -> bytes:
        return bytes(raw[4:4 + self.addr_size]) + bytes(raw[:4][::-1])

    def decode(self, raw: bytes) -> str:
        plen = LPM_KEY_PREFIX.unpack_from(raw)[0]
        addr = ipaddress.ip_address(bytes(raw[4:4 + self.addr_size]))
        return "%s/%d" % (addr, plen)


class PortCodec(IntCodec):
    """A port in network order; accepts 22 or '22' (and '22/tcp', the protocol ignored)."""

    def __init__(self):
        super().__init__(2, big_endian=True, name="port")

    def encode(self, value: object) -> bytes:
        if isinstance(value, str) and "/" in value:
            value = value.split("/", 1)[0]
        return super().encode(value)


class ProtoCodec(IntCodec):
    def __init__(self, size=1):
        super().__init__(size, name="proto", enum=PROTOCOLS)

    def encode(self, value: object) -> bytes:
        if isinstance(value, str) and value.lower() in PROTOCOLS:
            value = PROTOCOLS[value.lower()]
        return super().encode(value)

    def decode(self, raw: bytes) -> str | int:
        num = super().decode(raw)
        return PROTOCOL_NAMES.get(num, num)


class PortRuleCodec(Codec):
    """An LPM key {u32 prefixlen; u8 proto; u8 pad; be16 port}: "tcp/8080" (prefix 32) or "icmp" (prefix 8).

    Also takes {proto, port} (port 0 or left out: the whole protocol); a prefixlen
    given with it must be the one the port implies.
    """

    name = "proto_port"
    size = 8
    _proto = ProtoCodec()

    def describe(self) -> str:
        return "a port rule like tcp/8080 or icmp"

    def encode(self, value: object) -> bytes:
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"prefixlen", "proto", "pad", "port"})
            if unknown or "proto" not in value:
                raise ValueError("a port rule is {proto, port}, got %r" % (value,))
            proto, port = value["proto"], value.get("port", 0)
        else:
            proto, _sep, port = str(value).strip().partition("/")
            port = port or 0
        try:
            raw_proto = self._proto.encode(proto)
            number = int(port)
        except (TypeError, ValueError):
            raise ValueError("%r is not a port rule like tcp/8080 or icmp" % (value,)) from None
        if not 0 <= number <= 65535:
            raise ValueError("%r: port %d is not 0 to 65535" % (value, number))
        prefixlen = 32 if number else 8
        if isinstance(value, dict) and value.get("prefixlen", prefixlen) != prefixlen:
            what = "one port" if number else "the whole protocol"
            raise ValueError("%r: prefixlen must be %d for %s" % (value, prefixlen, what))
        return LPM_KEY_PREFIX.pack(prefixlen) + raw_proto + b"\0" + number.to_bytes(2, "big")

    def decode(self, raw: bytes) -> str:
        proto = self._proto.decode(raw[4:5])
        port = int.from_bytes(raw[6:8], "big")
        return "%s/%d" % (proto, port) if LPM_KEY_PREFIX.unpack_from(raw)[0] > 8 else str(proto)

    def sort_key(self, raw: bytes) -> tuple[int, int]:
        return (raw[4], int.from_bytes(raw[6:8], "big"))


class MacCodec(Codec):
    name = "mac"
    size = 6

    def describe(self) -> str:
        return "a MAC address like aa:bb:cc:dd:ee:ff"

    def encode(self, value: object) -> bytes:
        parts = str(value).replace("-", ":").split(":")
        try:
            raw = bytes(int(p, 16) for p in parts)
        except ValueError:
            raw = b""
        if len(parts) != 6 or len(raw) != 6 or any(len(p) > 2 for p in parts):
            raise ValueError("%r is not a MAC address like aa:bb:cc:dd:ee:ff" % (value,))
        return raw

    def decode(self, raw: bytes) -> str:
        return ":".join("%02x" % b for b in raw)


class IfindexCodec(IntCodec):
    """An interface index; accepts the interface name (resolved on the managed host) or the number."""

    def __init__(self, size=4):
        super().__init__(size, name="ifindex")

    def encode(self, value: object) -> bytes:
        if isinstance(value, str) and not value.strip().isdigit():
            try:
                value = socket.if_nametoindex(value.strip())
            except OSError:
                raise ValueError("interface %r does not exist on this host" % value) from None
        return super().encode(value)

    def decode(self, raw: bytes) -> str | int:
        index = super().decode(raw)
        try:
            return socket.if_indextoname(index)
        except OSError:
            return index


class HexCodec(Codec):
    def __init__(self, size):
        self.size = size
        self.name = "hex"

    def describe(self) -> str:
        return "%d bytes as hex or a list of byte values" % self.size

    def encode(self, value: object) -> bytes:
        if isinstance(value, (list, tuple)):
            try:
                raw = bytes(value)
            except (TypeError, ValueError):
                raise ValueError("a list of bytes (0-255) is needed, got %r" % (value,)) from None
        else:
            text = str(value).replace(" ", "").replace(":", "")
            if text.startswith("0x"):
                text = text[2:]
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raise ValueError("%r is not hex" % (value,)) from None
        if len(raw) != self.size:
            raise ValueError("%d bytes given where %d are needed" % (len(raw), self.size))
        return raw

    def decode(self, raw: bytes) -> str:
        return bytes(raw).hex()


class StructCodec(Codec):
    """A C struct written as a dict of its field names."""

    def __init__(self, size, fields, name="struct"):
        self.size = size
        self.fields = fields  # [(name, offset, codec)]
        self.name = name

    def describe(self) -> str:
        return "a dict of the fields of %s (%s)" % (self.name, ", ".join(f[0] for f in self.fields))

    def encode(self, value: object) -> bytes:
        if not isinstance(value, dict):
            raise ValueError("%s needs a dict of its fields (%s), got %r"
                             % (self.name, ", ".join(f[0] for f in self.fields), value))
        known = {f[0] for f in self.fields}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError("%s has no field %r (fields: %s)" % (self.name, unknown[0], ", ".join(sorted(known))))
        missing = [f[0] for f in self.fields if f[0] not in value and not is_padding(f[0])]
        if missing:
            raise ValueError("%s field %r is missing" % (self.name, missing[0]))
        raw = bytearray(self.size)
        for fname, offset, codec in self.fields:
            if fname not in value:
                continue  # padding left out: zeros
            try:
                raw[offset:offset + codec.size] = codec.encode(value[fname])
            except ValueError as exc:
                raise ValueError("field %r: %s" % (fname, exc)) from None
        return bytes(raw)

    def decode(self, raw: bytes) -> dict:
        return {f: c.decode(raw[o:o + c.size]) for f, o, c in self.fields}

    def text(self, raw: bytes) -> str:
        return "{%s}" % ", ".join("%s: %s" % (f, c.text(raw[o:o + c.size])) for f, o, c in self.fields)


class CharArrayCodec(Codec):
    """A C char array holding a NUL-terminated string."""

    def __init__(self, size):
        self.size = size
        self.name = "char[%d]" % size

    def describe(self) -> str:
        return "a string of at most %d bytes (%s)" % (self.size - 1, self.name)

    def encode(self, value: object) -> bytes:
        if not isinstance(value, str):
            raise ValueError("%s needs a string, got %r" % (self.name, value))
        raw = value.encode()
        if len(raw) >= self.size:
            raise ValueError("%r is %d bytes; %s holds at most %d and the NUL"
                             % (value, len(raw), self.name, self.size - 1))
        return raw.ljust(self.size, b"\0")

    def decode(self, raw: bytes) -> str:
        return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


class ArrayCodec(Codec):
    """A C array of count items, written as a list of at most count of them; the rest are zeros."""

    def __init__(self, item, count):
        self.item = item
        self.count = count
        self.size = item.size * count
        self.name = "%s[%d]" % (item.name, count)

    def describe(self) -> str:
        if isinstance(self.item, IntCodec) and not self.item.enum:
            what = "integers from %d to %d" % self.item.bounds()
        else:
            what = "items, each %s" % self.item.describe()
        return "a list of at most %d %s (%s); the entries left out are 0" % (self.count, what, self.name)

    def encode(self, value: object) -> bytes:
        if not isinstance(value, (list, tuple)):
            raise ValueError("%s needs a list, got %r" % (self.name, value))
        if len(value) > self.count:
            raise ValueError("%d items do not fit %s" % (len(value), self.name))
        return b"".join(self.item.encode(v) for v in value).ljust(self.size, b"\0")

    def decode(self, raw: bytes) -> list:
        return [self.item.decode(raw[i * self.item.size:(i + 1) * self.item.size]) for i in range(self.count)]


def is_padding(field: str) -> bool:
    return field.startswith(("pad", "_", "reserved", "unused"))


NAMED = {
    "ipv4": lambda: AddressCodec(4), "ipv6": lambda: AddressCodec(6),
    "ipv4_cidr": lambda: CidrCodec(4), "ipv6_cidr": lambda: CidrCodec(6),
    "u8": lambda: IntCodec(1), "u16": lambda: IntCodec(2), "u32": lambda: IntCodec(4), "u64": lambda: IntCodec(8),
    "s8": lambda: IntCodec(1, True), "s16": lambda: IntCodec(2, True), "s32": lambda: IntCodec(4, True),
    "s64": lambda: IntCodec(8, True),
    "be16": lambda: IntCodec(2, big_endian=True, name="be16"), "port": PortCodec,
    "be32": lambda: IntCodec(4, big_endian=True, name="be32"),
    "proto": ProtoCodec, "proto_port": PortRuleCodec, "mac": MacCodec, "ifindex": IfindexCodec, "bool": BoolCodec,
}
TYPE_NAMES = sorted([*NAMED, "hex"])


def named(type_name: str, size: int) -> Codec:
    """The codec for an explicit type name; `hex` takes the map's size."""
    if type_name == "hex":
        return HexCodec(size)
    if type_name not in NAMED:
        raise ValueError("unknown type %r; use one of %s" % (type_name, ", ".join(TYPE_NAMES)))
    codec = NAMED[type_name]()
    if type_name.endswith("_cidr") and size > codec.size:
        codec = CidrCodec(codec.version, size)  # keys padded by the compiler
    return codec


def guess(values: list, size: int, lpm: bool) -> Codec | None:
    """A codec for an untyped (or plain-integer) field, from the form of what the operator wrote."""
    texts = [v for v in values if isinstance(v, str)]
    if texts and len(texts) == len(values):
        if lpm and all("/" in t for t in texts):
            return CidrCodec(4 if size <= 8 else 6, size) if size in (8, 20) or size > 20 else None
        if not lpm and all(_is_ip(t, 4) for t in texts) and size == 4:
            return AddressCodec(4)
        if not lpm and all(_is_ip(t, 6) for t in texts) and size == 16:
            return AddressCodec(6)
        if not lpm and any(_is_ip(t, 4) or _is_ip(t, 6) for t in texts):
            return AddressCodec(4 if size == 4 else 6) if size in (4, 16) else None
    return None


def _is_ip(text, version):
    try:
        return ipaddress.ip_address(text.strip()).version == version
    except ValueError:
        return False
