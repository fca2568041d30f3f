"""Thin ctypes binding to the system libbpf (libbpf.so.1).

Only what the engine needs: open/load objects, walk programs and maps, read
BTF, pin, object info, and element operations on map file descriptors.
libbpf's own diagnostics (including the verifier log of a failed load) are
captured through its print callback so that errors can quote them.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading

from ..errors import DatapathError

BPF_OBJ_NAME_LEN = 16

# enum bpf_prog_type / bpf_map_type values used here (linux/bpf.h, stable ABI)
PROG_TYPE_SCHED_CLS = 3
PROG_TYPE_XDP = 6
MAP_TYPE_PROG_ARRAY = 3

# BTF kinds (linux/btf.h)
BTF_KIND_INT = 1
BTF_KIND_PTR = 2
BTF_KIND_ARRAY = 3
BTF_KIND_STRUCT = 4
BTF_KIND_UNION = 5
BTF_KIND_ENUM = 6
BTF_KIND_TYPEDEF = 8
BTF_KIND_VOLATILE = 9
BTF_KIND_CONST = 10
BTF_KIND_RESTRICT = 11
BTF_KIND_VAR = 14
BTF_KIND_DATASEC = 15
BTF_KIND_TYPE_TAG = 18
BTF_KIND_ENUM64 = 19
BTF_INT_SIGNED = 1
BTF_INT_BOOL = 4


class BtfType(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32),
                ("size_or_type", ctypes.c_uint32)]

    @property
    def kind(self) -> int:
        return (self.info >> 24) & 0x1F

    @property
    def vlen(self) -> int:
        return self.info & 0xFFFF


class BtfVarSecinfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("offset", ctypes.c_uint32),
                ("size", ctypes.c_uint32)]


class BtfMember(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32), ("offset", ctypes.c_uint32)]


class BtfArray(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("index_type", ctypes.c_uint32),
                ("nelems", ctypes.c_uint32)]


class ProgInfo(ctypes.Structure):
    """Leading part of struct bpf_prog_info (the kernel fills what fits)."""
    _fields_ = [
        ("type", ctypes.c_uint32), ("id", ctypes.c_uint32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32), ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN), ("ifindex", ctypes.c_uint32),
        ("gpl_compatible", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64), ("netns_ino", ctypes.c_uint64),
        ("nr_jited_ksyms", ctypes.c_uint32), ("nr_jited_func_lens", ctypes.c_uint32),
        ("jited_ksyms", ctypes.c_uint64), ("jited_func_lens", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32), ("func_info_rec_size", ctypes.c_uint32),
        ("func_info", ctypes.c_uint64), ("nr_func_info", ctypes.c_uint32),
        ("nr_line_info", ctypes.c_uint32), ("line_info", ctypes.c_uint64),
        ("jited_line_info", ctypes.c_uint64), ("nr_jited_line_info", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32), ("jited_line_info_rec_size", ctypes.c_uint32),
        ("nr_prog_tags", ctypes.c_uint32), ("prog_tags", ctypes.c_uint64),
        ("run_time_ns", ctypes.c_uint64), ("run_cnt", ctypes.c_uint64),
        ("recursion_misses", ctypes.c_uint64), ("verified_insns", ctypes.c_uint32),
    ]


class MapInfo(ctypes.Structure):
    """Leading part of struct bpf_map_info."""
    _fields_ = [
        ("type", ctypes.c_uint32), ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32), ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN), ("ifindex", ctypes.c_uint32),
        ("btf_vmlinux_value_type_id", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64), ("netns_ino", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32), ("btf_key_type_id", ctypes.c_uint32),
        ("btf_value_type_id", ctypes.c_uint32),
    ]


class TestRunOpts(ctypes.Structure):
    """struct bpf_test_run_opts (libbpf 1.x)."""
    _fields_ = [
        ("sz", ctypes.c_size_t), ("data_in", ctypes.c_void_p), ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p), ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32), ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32), ("repeat", ctypes.c_int), ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32), ("cpu", ctypes.c_uint32), ("batch_size", ctypes.c_uint32),
    ]


_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
RINGBUF_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)

_lib = None
_libc = None
_lock = threading.Lock()
_messages = []


def _sig(lib, name, restype, *argtypes):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


@_PRINT_FN
def _capture(level, fmt, args):
    if level > 1:  # LIBBPF_DEBUG: too chatty to quote in an error
        return 0
    # va_list decays to a pointer on the ABIs we run on, so it can be handed
    # straight to vsnprintf.
    buf = ctypes.create_string_buffer(65536)
    _libc.vsnprintf(buf, len(buf), fmt, args)
    _messages.append(buf.value.decode("utf-8", "replace"))
    return 0


def lib() -> ctypes.CDLL:
    """Return the loaded libbpf, binding signatures on first use."""
    global _lib, _libc
    with _lock:
        if _lib is not None:
            return _lib
        name = ctypes.util.find_library("bpf") or "libbpf.so.1"
        try:
            handle = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise DatapathError(
                "libbpf could not be loaded (%s); install the libbpf1 package on this host." % exc) from exc
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        _libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
        p, i, u32, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_size_t
        cs = ctypes.c_char_p
        _sig(handle, "libbpf_set_print", p, _PRINT_FN)
        _sig(handle, "bpf_object__open_file", p, cs, p)
        _sig(handle, "bpf_object__load", i, p)
        _sig(handle, "bpf_object__close", None, p)
        _sig(handle, "bpf_object__btf", p, p)
        _sig(handle, "bpf_object__next_program", p, p, p)
        _sig(handle, "bpf_object__next_map", p, p, p)
        _sig(handle, "bpf_program__name", cs, p)
        _sig(handle, "bpf_program__section_name", cs, p)
        _sig(handle, "bpf_program__type", i, p)
        _sig(handle, "bpf_program__fd", i, p)
        _sig(handle, "bpf_program__set_autoload", i, p, ctypes.c_bool)
        _sig(handle, "bpf_program__set_ifindex", None, p, u32)
        _sig(handle, "bpf_map__name", cs, p)
        _sig(handle, "bpf_map__type", i, p)
        _sig(handle, "bpf_map__key_size", u32, p)
        _sig(handle, "bpf_map__value_size", u32, p)
        _sig(handle, "bpf_map__max_entries", u32, p)
        _sig(handle, "bpf_map__set_max_entries", i, p, u32)
        _sig(handle, "bpf_map__map_flags", u32, p)
        _sig(handle, "bpf_map__fd", i, p)
        _sig(handle, "bpf_map__reuse_fd", i, p, i)
        _sig(handle, "bpf_map__is_internal", ctypes.c_bool, p)
        _sig(handle, "bpf_map__initial_value", p, p, ctypes.POINTER(sz))
        _sig(handle, "bpf_map__set_ifindex", i, p, u32)
        _sig(handle, "btf__type_by_id", ctypes.POINTER(BtfType), p, u32)
        _sig(handle, "btf__name_by_offset", cs, p, u32)
        _sig(handle, "btf__find_by_name_kind", i, p, cs, u32)
        _sig(handle, "btf__load_from_kernel_by_id", p, u32)
        _sig(handle, "btf__free", None, p)
        _sig(handle, "btf__resolve_size", ctypes.c_int64, p, u32)
        _sig(handle, "bpf_obj_pin", i, i, cs)
        _sig(handle, "bpf_obj_get", i, cs)
        _sig(handle, "bpf_obj_get_info_by_fd", i, i, p, ctypes.POINTER(u32))
        _sig(handle, "bpf_prog_get_fd_by_id", i, u32)
        _sig(handle, "bpf_map_get_fd_by_id", i, u32)
        _sig(handle, "bpf_map_update_elem", i, i, p, p, ctypes.c_uint64)
        _sig(handle, "bpf_map_lookup_elem", i, i, p, p)
        _sig(handle, "bpf_map_delete_elem", i, i, p)
        _sig(handle, "bpf_map_get_next_key", i, i, p, p)
        _sig(handle, "bpf_prog_test_run_opts", i, i, ctypes.POINTER(TestRunOpts))
        _sig(handle, "bpf_prog_load", i, i, cs, cs, p, sz, p)
        u32p = ctypes.POINTER(u32)
        _sig(handle, "bpf_map_lookup_batch", i, i, p, p, p, p, u32p, p)
        _sig(handle, "bpf_map_update_batch", i, i, p, p, u32p, p)
        _sig(handle, "bpf_map_delete_batch", i, i, p, u32p, p)
        _sig(handle, "ring_buffer__new", p, i, RINGBUF_SAMPLE_FN, p, p)
        _sig(handle, "ring_buffer__poll", i, p, i)
        _sig(handle, "ring_buffer__consume", i, p)
        _sig(handle, "ring_buffer__free", None, p)
        handle.libbpf_set_print(_capture)
        _lib = handle
        return _lib


def take_messages() -> str:
    """Return and forget what libbpf printed since the last call."""
    out = "".join(_messages)
    del _messages[:]
    return out


def check(ret: int, what: str) -> int:
    """Raise OSError for a negative libbpf return (libbpf 1.x: -errno)."""
    if ret < 0:
        err = -ret if ret != -1 else (ctypes.get_errno() or errno.EINVAL)
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))
    return ret


def obj_get(path: str) -> int:
    fd = lib().bpf_obj_get(path.encode())
    return check(fd, "open pinned object %s" % path)


def obj_pin(fd: int, path: str) -> None:
    check(lib().bpf_obj_pin(fd, path.encode()), "pin %s" % path)


def _info(fd, cls):
    info = cls()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    check(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)), "object info")
    return info


def prog_info(fd: int) -> dict:
    """Return a dict describing the program behind fd, map ids included."""
    info = _info(fd, ProgInfo)
    map_ids = (ctypes.c_uint32 * info.nr_map_ids)()
    if info.nr_map_ids:
        full = ProgInfo()
        full.nr_map_ids = info.nr_map_ids
        full.map_ids = ctypes.addressof(map_ids)
        size = ctypes.c_uint32(ctypes.sizeof(full))
        check(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(full), ctypes.byref(size)), "program info")
    return {
        "id": info.id, "type": info.type, "tag": bytes(info.tag).hex(),
        "name": info.name.decode(errors="replace"), "map_ids": list(map_ids),
        "load_time": info.load_time,
        "xlated_insns": info.xlated_prog_len // 8, "jited_bytes": info.jited_prog_len,
        "verified_insns": info.verified_insns, "run_time_ns": info.run_time_ns, "run_cnt": info.run_cnt,
    }


def map_info(fd: int) -> dict:
    info = _info(fd, MapInfo)
    return {
        "id": info.id, "type": info.type, "key_size": info.key_size,
        "value_size": info.value_size, "max_entries": info.max_entries,
        "flags": info.map_flags, "name": info.name.decode(errors="replace"),
        "btf_id": info.btf_id, "btf_key_type_id": info.btf_key_type_id,
        "btf_value_type_id": info.btf_value_type_id,
    }


def prog_fd_by_id(prog_id: int) -> int:
    return check(lib().bpf_prog_get_fd_by_id(prog_id), "program id %d" % prog_id)


def map_fd_by_id(map_id: int) -> int:
    return check(lib().bpf_map_get_fd_by_id(map_id), "map id %d" % map_id)


def test_run(prog_fd: int, packet: bytes, repeat: int = 1) -> tuple[int, bytes, int]:
    """BPF_PROG_TEST_RUN: (return code, packet out, mean ns per run) of the program on `packet`."""
    data_in = ctypes.create_string_buffer(bytes(packet), len(packet))
    data_out = ctypes.create_string_buffer(len(packet) + 512)
    opts = TestRunOpts(sz=ctypes.sizeof(TestRunOpts), data_in=ctypes.addressof(data_in),
                       data_out=ctypes.addressof(data_out), data_size_in=len(packet),
                       data_size_out=len(data_out), repeat=repeat)
    check(lib().bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts)), "test run")
    return opts.retval, data_out.raw[:opts.data_size_out], opts.duration


def prog_load(prog_type: int, name: str, insns: bytes, license_: str = "GPL") -> int:
    """Load a program given as raw instructions (8 bytes each); its fd."""
    code = ctypes.create_string_buffer(insns, len(insns))
    return check(lib().bpf_prog_load(prog_type, name.encode(), license_.encode(), code, len(insns) // 8, None),
                 "load %s" % name)


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    check(lib().bpf_map_update_elem(fd, key, value, flags), "map update")


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """Return the value bytes for key, or None when the key is absent."""
    val = ctypes.create_string_buffer(value_size)
    ret = lib().bpf_map_lookup_elem(fd, key, val)
    if ret < 0 and -ret == errno.ENOENT:
        return None
    check(ret, "map lookup")
    return val.raw


def map_delete(fd: int, key: bytes) -> bool:
    """Delete key; return False when it was not there."""
    ret = lib().bpf_map_delete_elem(fd, key)
    if ret < 0 and -ret == errno.ENOENT:
        return False
    check(ret, "map delete")
    return True


class RingBuffer:
    """libbpf's ring buffer reader over a BPF_MAP_TYPE_RINGBUF map: poll() hands each record's bytes to on_record."""

    def __init__(self, map_fd: int, on_record):
        def _sample(_ctx, data, size):
            on_record(ctypes.string_at(data, size))
            return 0

        self._callback = RINGBUF_SAMPLE_FN(_sample)  # kept alive as long as the reader
        self._rb = lib().ring_buffer__new(map_fd, self._callback, None, None)
        if not self._rb:
            err = ctypes.get_errno() or errno.EINVAL
            raise OSError(err, "ring buffer: %s" % os.strerror(err))

    def poll(self, timeout_ms: int) -> int:
        """Wait up to timeout_ms for records; consume what is there; return how many (0 when a signal came)."""
        ret = lib().ring_buffer__poll(self._rb, timeout_ms)
        return 0 if ret == -errno.EINTR else check(ret, "ring buffer poll")

    def consume(self) -> int:
        return check(lib().ring_buffer__consume(self._rb), "ring buffer consume")

    def close(self) -> None:
        if self._rb:
            lib().ring_buffer__free(self._rb)
            self._rb = None
