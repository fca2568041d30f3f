"""Long address lists sent as the map's own key bytes: the binary transfer form of a feed, and the buffer a sync
writes from without parsing an entry.

The controller turns a list of addresses (or networks) into their fixed-size keys back to back, sorted and each
once: 4 bytes per IPv4 address, 16 per IPv6 address, and the LPM trie layout for networks (a host-order u32
prefix length, then the address: 8 bytes for IPv4, 20 for IPv6), as types/codecs.py writes them. The transfer
form carries the bytes (zlib-compressed when that pays, base64) with their count and sha256; the host checks
both before anything changes and hands the buffer to the kernel's batch update as it is.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import array
import base64
import binascii
import hashlib
import zlib

from .errors import DatapathError
from .kernel.maps import records
from .types import codecs

FORMAT = "keys"  # the packed form's "format": absent in the text form (one entry a line)
DIGEST_LEN = 32  # hex digits of sha256 a packed buffer carries
WORDS = {array.array(code).itemsize: code for code in ("Q", "L", "I")}  # key size: an array type of that width
CODECS = {"ipv4": codecs.AddressCodec(4), "ipv6": codecs.AddressCodec(6),
          "ipv4_cidr": codecs.CidrCodec(4), "ipv6_cidr": codecs.CidrCodec(6)}


class KeyBuffer:
    """Fixed-size keys back to back, each once: len, iteration (the keys' bytes) and membership; the set of keys
    is built only when something asks for it."""

    def __init__(self, raw: bytes, key_type: str):
        self.raw, self.key_type = raw, key_type
        self.codec = CODECS[key_type]
        self.size = self.codec.size
        self._set = None

    def __len__(self):
        return len(self.raw) // self.size

    def __iter__(self):
        return iter(self.records())

    def __contains__(self, key):
        return key in self.as_set()

    def records(self) -> tuple[bytes, ...]:
        return records(self.raw, self.size)

    def as_set(self) -> set[bytes]:
        if self._set is None:
            self._set = set(self.records())
        return self._set

    def texts(self, limit: int | None = None) -> list[str]:
        """The first `limit` keys (all without it) as an operator writes them."""
        raw = self.raw if limit is None else self.raw[:limit * self.size]
        return [self.codec.text(k) for k in records(raw, self.size)]


def differences(new: bytes, old: bytes, size: int) -> tuple[bytes, bytes]:
    """(keys of new not in old, keys of old not in new), each back to back: two buffers of `size`-byte keys,
    compared as sets (of machine words where a key is one: half the work of sets of bytes objects)."""
    code = WORDS.get(size)
    if code:
        a, b = set(array.array(code, new)), set(array.array(code, old))
        return array.array(code, a - b).tobytes(), array.array(code, b - a).tobytes()
    a, b = set(records(new, size)), set(records(old, size))
    return b"".join(a - b), b"".join(b - a)


def encode(entries: list, key_type: str) -> bytes:
    """The keys of entries (strings the controller checked) back to back, sorted and each once."""
    codec = CODECS[key_type]
    try:
        keys = codec.encode_many(list(entries))
    except ValueError as exc:
        raise DatapathError("the entries for %s keys cannot be packed: %s." % (key_type, exc)) from None
    return b"".join(sorted(set(keys)))


def pack(raw: bytes, key_type: str) -> dict:
    """The transfer form of keys back to back: {format, key_type, data, compressed, count, digest}."""
    size = CODECS[key_type].size
    squeezed = zlib.compress(raw, 6)
    compressed = len(squeezed) < len(raw)
    return {"format": FORMAT, "key_type": key_type, "data": base64.b64encode(squeezed if compressed else raw)
            .decode("ascii"), "compressed": compressed, "count": len(raw) // size,
            "digest": hashlib.sha256(raw).hexdigest()[:DIGEST_LEN]}


def pack_entries(entries: list, key_type: str) -> dict:
    return pack(encode(entries, key_type), key_type)


def received(packed: dict, where: str) -> bytes:
    """The bytes a packed transfer (text lines or key bytes) carries, base64 and zlib undone, once their sha256
    matches; DatapathError naming `where` when they did not arrive whole."""
    try:
        raw = base64.b64decode(packed.get("data") or "", validate=True)
        raw = zlib.decompress(raw) if packed.get("compressed") else raw
    except (binascii.Error, ValueError, zlib.error):
        raw = None
    digest = str(packed.get("digest") or "")
    if raw is None or len(digest) < 16 or hashlib.sha256(raw).hexdigest()[:len(digest)] != digest.lower():
        raise DatapathError("the packed entries of %s did not arrive whole (their sha256 does not match); nothing "
                            "was changed, so run the task again." % where)
    return raw


def unpack(packed: dict, where: str) -> KeyBuffer:
    """The keys packed holds; DatapathError naming `where` when they do not arrive whole, or are not keys of the
    type and count they claim."""
    key_type = packed.get("key_type")
    if key_type not in CODECS:
        known = ", ".join(sorted(CODECS))
        raise DatapathError("the packed keys of %s name key type %r; packed keys are one of %s, so run the task "
                            "again with this collection's own action plugin." % (where, key_type, known))
    raw = received(packed, where)
    keys = KeyBuffer(raw, key_type)
    if len(raw) % keys.size or (packed.get("count") is not None and len(keys) != packed["count"]):
        raise DatapathError("the packed keys of %s are %d bytes, not %s %d-byte %s keys sent; nothing was changed, "
                            "so run the task again." % (where, len(raw), packed.get("count", "whole"), keys.size,
                                                        key_type))
    return keys
