"""Element operations on one pinned map: dump, write and delete, in batches where the kernel has them."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ctypes
import errno
import os
import struct

from ..errors import DatapathError
from . import libbpf

# enum bpf_map_type (linux/bpf.h)
HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH, LPM_TRIE = 1, 2, 5, 6, 9, 10, 11
DEVMAP, DEVMAP_HASH = 14, 25
XSKMAP = 17  # AF_XDP sockets: user space cannot read it back (lookups are refused)
TYPE_NAMES = {HASH: "hash", ARRAY: "array", PERCPU_HASH: "percpu_hash", PERCPU_ARRAY: "percpu_array",
              LRU_HASH: "lru_hash", LRU_PERCPU_HASH: "lru_percpu_hash", LPM_TRIE: "lpm_trie",
              DEVMAP: "devmap", DEVMAP_HASH: "devmap_hash"}
PERCPU = {PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH}
ARRAYS = {ARRAY, PERCPU_ARRAY}  # every index exists; "removing" resets to zero
BATCH = {HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH}
CHUNK = 16384
NO_BATCH_ERRNOS = {errno.EINVAL, errno.EOPNOTSUPP, 524}  # 524: the kernel's ENOTSUPP


class BatchOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("elem_flags", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def _splitter(size, count):
    """A struct that cuts `count` records of `size` bytes out of a buffer in one C call."""
    return struct.Struct("%ds" % size * count)


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

    def __init__(self, path):
        if not os.path.exists(path):
            raise DatapathError("no map is pinned at %s; deploy its program first, or check the path "
                                "(or interface, name and map)." % path)
        self.path = path
        self.fd = libbpf.obj_get(path)
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
        if self.type in BATCH:
            try:
                return self._dump_batch()
            except OSError as exc:
                if exc.errno not in NO_BATCH_ERRNOS:
                    raise
        return self._dump_iter()

    def _dump_batch(self):
        lib = libbpf.lib()
        out = {}
        chunk = max(1, min(CHUNK, self.max_entries))
        keys = ctypes.create_string_buffer(self.key_size * chunk)
        values = ctypes.create_string_buffer(self.slot_size * chunk)
        token_in = ctypes.create_string_buffer(max(8, self.key_size))
        token_out = ctypes.create_string_buffer(max(8, self.key_size))
        first = True
        while True:
            count = ctypes.c_uint32(chunk)
            ret = lib.bpf_map_lookup_batch(self.fd, None if first else token_in, token_out, keys, values,
                                           ctypes.byref(count), ctypes.byref(self._opts))
            done = ret < 0 and -ret == errno.ENOENT
            if ret < 0 and not done:
                libbpf.check(ret, "dump %s" % self.path)
            n = count.value
            if n:
                out.update(zip(_splitter(self.key_size, n).unpack_from(keys),
                               _splitter(self.slot_size, n).unpack_from(values)))
            if done:
                return out
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

    def write_packed(self, keys: list[bytes], values: bytes) -> None:
        """Create or overwrite keys (a list) with values (their bytes back to back)."""
        if not keys:
            return
        vs = self.slot_size
        if self.type in BATCH:
            lib = libbpf.lib()
            for start in range(0, len(keys), CHUNK):
                part = keys[start:start + CHUNK]
                count = ctypes.c_uint32(len(part))
                ret = lib.bpf_map_update_batch(self.fd, b"".join(part), values[start * vs:(start + len(part)) * vs],
                                               ctypes.byref(count), ctypes.byref(self._opts))
                libbpf.check(ret, "write %s" % self.path)
            return
        for i, key in enumerate(keys):
            libbpf.map_update(self.fd, key, values[i * vs:(i + 1) * vs])

    def delete(self, keys: list[bytes]) -> None:
        """Remove keys (arrays: reset them to zero)."""
        if not keys:
            return
        if self.type in ARRAYS:
            self.write_packed(keys, b"\0" * (self.slot_size * len(keys)))
            return
        if self.type in BATCH:
            lib = libbpf.lib()
            for start in range(0, len(keys), CHUNK):
                part = keys[start:start + CHUNK]
                count = ctypes.c_uint32(len(part))
                ret = lib.bpf_map_delete_batch(self.fd, b"".join(part), ctypes.byref(count),
                                               ctypes.byref(self._opts))
                libbpf.check(ret, "delete from %s" % self.path)
            return
        for key in keys:
            libbpf.map_delete(self.fd, key)
