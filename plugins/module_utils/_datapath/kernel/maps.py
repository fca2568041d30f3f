"""Element operations on one pinned map: dump, write and delete, in batches where the kernel has them."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import struct

from ..errors import DatapathError
from . import libbpf

# enum bpf_map_type (linux/bpf.h)
HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH, LPM_TRIE = 1, 2, 5, 6, 9, 10, 11
DEVMAP, DEVMAP_HASH = 14, 25
XSKMAP = 17  # AF_XDP sockets: user space cannot read it back (lookups are refused)
RINGBUF = 27  # a ring buffer: records for a reader, no elements to walk (the kernel answers ENOTSUPP)
TYPE_NAMES = {HASH: "hash", ARRAY: "array", PERCPU_HASH: "percpu_hash", PERCPU_ARRAY: "percpu_array",
              LRU_HASH: "lru_hash", LRU_PERCPU_HASH: "lru_percpu_hash", LPM_TRIE: "lpm_trie",
              DEVMAP: "devmap", DEVMAP_HASH: "devmap_hash"}
PERCPU = {PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH}
ARRAYS = {ARRAY, PERCPU_ARRAY}  # every index exists; "removing" resets to zero
# maps with batch calls; an LPM trie has them through the kernel's generic walk (6.x), an older kernel refuses
# with EINVAL and the element-by-element path runs
BATCH = {HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH, LPM_TRIE}
READ_CHUNK = 1 << 17  # elements a batch lookup returns at most (the buffers are this many keys and values)
CHUNK = 1 << 20  # elements a batch update or delete takes at most: the kernel copies them one by one anyway
NO_BATCH_ERRNOS = {errno.EINVAL, errno.EOPNOTSUPP, 524}  # 524: the kernel's ENOTSUPP


class BatchOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("elem_flags", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def _splitter(size, count):
    """A struct that cuts `count` records of `size` bytes out of a buffer in one C call."""
    return struct.Struct("%ds" % size * count)


def records(buf: bytes, size: int) -> tuple[bytes, ...]:
    """The `size`-byte records back to back in buf, cut in one C call."""
    return _splitter(size, len(buf) // size).unpack(buf) if buf and size else ()


def percpu_sum(raw: bytes, stride: int, offset: int = 0) -> int:
    """The u64 at `offset` of every CPU's copy of a value (copies `stride` bytes apart, as a per-CPU map's
    lookup returns them), summed; a plain map's value is one copy."""
    return sum(struct.unpack_from("Q", raw, c * stride + offset)[0] for c in range(len(raw) // stride))


def possible_cpus() -> int:
    with open("/sys/devices/system/cpu/possible") as fh:
        text = fh.read().strip()
    count = 0
    for part in text.split(","):
        lo, _dash, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


class PinnedMap:
    """An open pinned map; use as a context manager."""

    def __init__(self, path, fd: int | None = None):
        """The map pinned at path; with fd, the map behind that fd (a duplicate is kept), path only naming it."""
        if fd is None and not os.path.exists(path):
            raise DatapathError("no map is pinned at %s; deploy its program first, or check the path "
                                "(or interface, name and map)." % path)
        self.path = path
        self.fd = libbpf.obj_get(path) if fd is None else os.dup(fd)
        self.info = libbpf.map_info(self.fd)
        self.type = self.info["type"]
        self.key_size = self.info["key_size"]
        self.value_size = self.info["value_size"]
        self.max_entries = self.info["max_entries"]
        self.ncpu = possible_cpus() if self.type in PERCPU else 1
        self.stride = (self.value_size + 7) // 8 * 8 if self.type in PERCPU else self.value_size
        self.slot_size = self.stride * self.ncpu  # bytes of one value as the syscall sees it
        self._opts = BatchOpts(ctypes.sizeof(BatchOpts), 0, 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, "type %d" % self.type)

    # reading ------------------------------------------------------------
    def dump(self) -> dict[bytes, bytes]:
        """{key bytes: value bytes} of every element."""
        keys, values = self.dump_packed()
        return dict(zip(keys, records(values, self.slot_size)))

    def dump_packed(self) -> tuple[list[bytes], bytes]:
        """([key bytes of every element], their values' bytes back to back): what a sync compares, without a
        dict of the whole map (the values are cut out only where someone needs them, see value_at)."""
        if self.type in BATCH:
            try:
                return self._dump_batch()
            except OSError as exc:
                if exc.errno not in NO_BATCH_ERRNOS:
                    raise
        out = self._dump_iter()
        return list(out), b"".join(out.values())

    def dump_keys(self) -> list[bytes]:
        """The key bytes of every element."""
        return self.dump_packed()[0]

    def _dump_batch(self):
        keys, values = [], []
        for raw_keys, raw_values, n in self._batches():
            keys.extend(_splitter(self.key_size, n).unpack(raw_keys))
            values.append(raw_values)
        return keys, b"".join(values)

    def key_digest(self) -> tuple[int, str]:
        """(how many elements, SHA-256 of their keys back to back in the kernel's order): one full read of the map,
        without cutting the keys apart (keycache.py's proof)."""
        h, count = hashlib.sha256(), 0
        if self.type in BATCH:
            try:
                for raw_keys, _values, n in self._batches():
                    h.update(raw_keys)
                    count += n
                return count, h.hexdigest()
            except OSError as exc:
                if exc.errno not in NO_BATCH_ERRNOS:
                    raise
        keys = self.dump_keys()
        return len(keys), hashlib.sha256(b"".join(keys)).hexdigest()

    def _batches(self):
        """(keys' bytes, values' bytes, how many) of batch lookups of up to READ_CHUNK elements a call (hash maps:
        the token is a bucket number; tries and other maps the kernel walks for us: the last key read)."""
        lib = libbpf.lib()
        chunk = max(1, min(READ_CHUNK, self.max_entries))
        kbuf = ctypes.create_string_buffer(self.key_size * chunk)
        vbuf = ctypes.create_string_buffer(self.slot_size * chunk)
        token_in = ctypes.create_string_buffer(max(8, self.key_size))
        token_out = ctypes.create_string_buffer(max(8, self.key_size))
        first = True
        while True:
            count = ctypes.c_uint32(chunk)
            ret = lib.bpf_map_lookup_batch(self.fd, None if first else token_in, token_out, kbuf, vbuf,
                                           ctypes.byref(count), ctypes.byref(self._opts))
            done = ret < 0 and -ret == errno.ENOENT
            if ret < 0 and not done:
                libbpf.check(ret, "dump %s" % self.path)
            n = count.value
            if n:
                yield ctypes.string_at(kbuf, n * self.key_size), ctypes.string_at(vbuf, n * self.slot_size), n
            if done:
                return
            ctypes.memmove(token_in, token_out, len(token_out))
            first = False

    def _dump_iter(self):
        lib = libbpf.lib()
        out = {}
        key = None
        nxt = ctypes.create_string_buffer(self.key_size)
        while True:
            ret = lib.bpf_map_get_next_key(self.fd, key, nxt)
            if ret < 0 and -ret == errno.ENOENT:
                return out
            libbpf.check(ret, "walk %s" % self.path)
            key = nxt.raw
            value = libbpf.map_lookup(self.fd, key, self.slot_size)
            if value is not None:
                out[key] = value

    # writing ------------------------------------------------------------
    def write(self, items: list[tuple[bytes, bytes]]) -> None:
        """Create or overwrite [(key bytes, value bytes)]."""
        self.write_packed([k for k, _v in items], b"".join(v for _k, v in items))

    def write_packed(self, keys: list[bytes] | bytes, values: bytes) -> None:
        """Create or overwrite keys (a list, or the keys' bytes back to back) with values (their bytes back to
        back)."""
        count = self._count(keys)
        if not count:
            return
        vs = self.slot_size
        done = self._batch(libbpf.lib().bpf_map_update_batch, keys, values, "write") if self.type in BATCH else 0
        for i in range(done, count):
            libbpf.map_update(self.fd, self._key(keys, i), values[i * vs:(i + 1) * vs])

    def _count(self, keys) -> int:
        return len(keys) // self.key_size if isinstance(keys, (bytes, bytearray)) else len(keys)

    def _key(self, keys, i) -> bytes:
        if isinstance(keys, (bytes, bytearray)):
            return bytes(keys[i * self.key_size:(i + 1) * self.key_size])
        return keys[i]

    def delete(self, keys: list[bytes]) -> None:
        """Remove keys (arrays: reset them to zero)."""
        if not keys:
            return
        if self.type in ARRAYS:
            self.write_packed(keys, bytes(self.slot_size * len(keys)))
            return
        done = self._batch(libbpf.lib().bpf_map_delete_batch, keys, None, "delete from") if self.type in BATCH else 0
        for key in keys[done:]:
            libbpf.map_delete(self.fd, key)

    def _batch(self, call, keys, values, what) -> int:
        """Batch update (values given) or delete of keys, CHUNK at a time; how many were done when the kernel has
        no batch call for this map (the caller does the rest one by one)."""
        vs, ks, total = self.slot_size, self.key_size, self._count(keys)
        packed = isinstance(keys, (bytes, bytearray))
        for start in range(0, total, CHUNK):
            n = min(CHUNK, total - start)
            part = keys[start * ks:(start + n) * ks] if packed else b"".join(keys[start:start + n])
            count = ctypes.c_uint32(n)
            if values is None:
                ret = call(self.fd, part, ctypes.byref(count), ctypes.byref(self._opts))
            else:
                ret = call(self.fd, part, values[start * vs:(start + n) * vs], ctypes.byref(count),
                           ctypes.byref(self._opts))
            if ret < 0 and -ret in NO_BATCH_ERRNOS:
                libbpf.take_messages()
                return start + count.value
            libbpf.check(ret, "%s %s" % (what, self.path))
        return total
