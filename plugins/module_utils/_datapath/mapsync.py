# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Make a pinned map hold the entries an operator asked for, and say what changed.

Every entry is parsed and encoded before the map is touched; the plan
(add, update, remove) comes from comparing bytes with a full dump; a
kernel refusal half-way puts back exactly what the map held.
"""

from __future__ import annotations

import errno
import os

from . import bpffs, codec
from .btfcodec import Btf, lpm_codec
from .errors import DatapathError
from .maps import ARRAYS, DEVMAP, DEVMAP_HASH, LPM_TRIE, PERCPU, PinnedMap

DIFF_LINES = 300


def map_path(path=None, interface=None, name=None, map_name=None, bpffs_path=bpffs.DEFAULT_BPFFS):
    """The pinned path of a map given directly, or by interface + program name + map name."""
    if path:
        return path
    if not (interface and name and map_name):
        raise DatapathError("name the map by path, or by interface, name (of the program) and map.")
    return os.path.join(bpffs.interface_dir(bpffs_path, interface), name, "maps", map_name)


def normalize(key=None, value=None, entries=None):
    """[(position, key, value or None)] from one key, a list of {key, value}, a dict, or a list of keys."""
    if entries is None:
        return [] if key is None else [(1, key, value)]
    if isinstance(entries, dict):
        return [(i, k, v) for i, (k, v) in enumerate(entries.items(), 1)]
    if not isinstance(entries, list):
        raise DatapathError("entries must be a list or a dict, not %s." % type(entries).__name__)
    out = []
    for i, item in enumerate(entries, 1):
        if isinstance(item, dict) and "key" in item:
            extra = set(item) - {"key", "value"}
            if extra:
                raise DatapathError("entry %d has unknown field %r; an entry has key and value."
                                    % (i, sorted(extra)[0]))
            out.append((i, item["key"], item.get("value")))
        else:
            out.append((i, item, None))
    return out


class Typing:
    """The key and value codecs of one map: explicit names, else the map's BTF, else the input's form."""

    def __init__(self, pinned, key_type=None, value_type=None, keys=(), values=()):
        self.map = pinned
        btf_key = btf_value = None
        with Btf(pinned.info["btf_id"]) as btf:
            if not key_type:
                btf_key = btf.codec(pinned.info["btf_key_type_id"], "key")
                if pinned.type == LPM_TRIE:
                    btf_key = lpm_codec(btf_key)
            if not value_type:
                btf_value = btf.codec(pinned.info["btf_value_type_id"], "value")
        self.key = self._pick("key", key_type, btf_key, keys, pinned.key_size)
        self.value = self._pick("value", value_type, btf_value, values, pinned.value_size)

    def _pick(self, what, type_name, from_btf, samples, size):
        kind = "%s_type" % what
        if type_name:
            try:
                chosen = codec.named(type_name, size)
            except ValueError as exc:
                raise DatapathError("%s: %s." % (kind, exc)) from None
            if chosen.size != size:
                raise DatapathError("%s %s is %d bytes but the map at %s has %d-byte %ss; use a %s type of that size."
                                    % (kind, type_name, chosen.size, self.map.path, size, what, what))
            return chosen
        if what == "value" and self.map.type in (DEVMAP, DEVMAP_HASH) and size in (4, 8):
            return codec.IfindexCodec(4) if size == 4 else _devmap_val()
        plain = from_btf is None or isinstance(from_btf, (codec.IntCodec, codec.HexCodec))
        if plain:
            guessed = codec.guess([s for s in samples if s is not None], size, self.map.type == LPM_TRIE)
            if guessed is not None and guessed.size == size:
                return guessed
        if from_btf is not None and from_btf.size == size:
            return from_btf
        if size in (1, 2, 4, 8):
            return codec.IntCodec(size)
        return codec.HexCodec(size)


def _devmap_val():
    return codec.StructCodec(8, [("ifindex", 0, codec.IfindexCodec(4)), ("prog_fd", 4, codec.IntCodec(4))],
                             "struct bpf_devmap_val")


class Sync:
    """The change that makes one map hold the requested entries."""

    def __init__(self, pinned, typing, wanted, state="present", exclusive=False):
        self.map, self.typing = pinned, typing
        self.encoded = self._encode(wanted)
        self.current = pinned.dump()
        self.add, self.update, self.remove = {}, {}, {}
        if state == "absent":
            for key in self.encoded:
                if key in self.current and not self._is_blank(key):
                    self.remove[key] = self.current[key]
        else:
            for key, value in self.encoded.items():
                old = self.current.get(key)
                if old is None:
                    self.add[key] = value if value is not None else self._blank()
                elif value is not None and value != old:
                    self.update[key] = (old, value)
            if exclusive:
                for key, old in self.current.items():
                    if key not in self.encoded and not self._is_blank(key):
                        self.remove[key] = old
        self._check_capacity()

    def _blank(self):
        return b"\0" * self.map.slot_size

    def _is_blank(self, key):
        return self.map.type in ARRAYS and self.current.get(key) == self._blank()

    def _encode(self, wanted):
        out, seen = {}, {}
        for position, key, value in wanted:
            label = "entry %d (key %r)" % (position, key)
            try:
                raw_key = self.typing.key.encode(key)
            except ValueError as exc:
                raise DatapathError("%s: %s; the map was not changed." % (label, exc)) from None
            raw_value = None
            if value is not None:
                try:
                    raw_value = self._encode_value(value)
                except ValueError as exc:
                    raise DatapathError("%s: value %r: %s; the map was not changed." % (label, value, exc)) from None
            if raw_key in out and out[raw_key] != raw_value:
                raise DatapathError("%s repeats the key of entry %d with another value; the map was not changed."
                                    % (label, seen[raw_key]))
            out[raw_key] = raw_value
            seen.setdefault(raw_key, position)
        return out

    def _encode_value(self, value):
        m, vcodec = self.map, self.typing.value
        if m.type not in PERCPU:
            return vcodec.encode(value)
        if isinstance(value, list) and not isinstance(vcodec, codec.HexCodec):
            if len(value) != m.ncpu:
                raise ValueError("a per-CPU value is one value or a list of %d (one per possible CPU), got a list "
                                 "of %d" % (m.ncpu, len(value)))
            parts = [vcodec.encode(v) for v in value]
        else:
            parts = [vcodec.encode(value)] * m.ncpu
        return b"".join(p.ljust(m.stride, b"\0") for p in parts)

    def _check_capacity(self):
        if self.map.type in ARRAYS or self.map.type == DEVMAP:
            return
        needed = len(self.current) - len(self.remove) + len(self.add)
        if needed > self.map.max_entries:
            raise DatapathError("map %s is too small: max_entries %d, needed %d; the map was not changed (raise "
                                "max_entries in the program or send fewer entries)."
                                % (self.map.path, self.map.max_entries, needed))

    @property
    def changed(self):
        return bool(self.add or self.update or self.remove)

    # applying -------------------------------------------------------------
    def apply(self):
        """Delete, then write; on a kernel refusal put the old contents back and raise."""
        m = self.map
        try:
            m.delete(list(self.remove))
            m.write(list(self.add.items()) + [(k, new) for k, (_old, new) in self.update.items()])
        except OSError as exc:
            self._restore()
            limit = ""
            if exc.errno in (errno.E2BIG, errno.ENOSPC, errno.ENOMEM):
                limit = " (max_entries %d, needed %d)" % (m.max_entries,
                                                          len(self.current) - len(self.remove) + len(self.add))
            raise DatapathError("the kernel refused the update of %s: %s%s; the map was put back as it was."
                                % (m.path, os.strerror(exc.errno), limit)) from None

    def _restore(self):
        m = self.map
        now = m.dump()
        extra = [k for k in now if k not in self.current]
        if m.type in ARRAYS:
            extra = []
        m.delete(extra)
        m.write([(k, v) for k, v in self.current.items() if now.get(k) != v])

    # showing ----------------------------------------------------------------
    def key_text(self, raw):
        return self.typing.key.text(raw)

    def value_text(self, raw):
        m, vcodec = self.map, self.typing.value
        if m.type not in PERCPU:
            return vcodec.text(raw[:m.value_size])
        return "[%s]" % ", ".join(vcodec.text(raw[i * m.stride:i * m.stride + m.value_size]) for i in range(m.ncpu))

    def diff_lines(self):
        lines = []
        order = self.typing.key.sort_key
        for key in sorted(self.add, key=order):
            value = self.add[key]
            shown = "" if value == self._blank() else ": %s" % self.value_text(value)
            lines.append("+ %s%s" % (self.key_text(key), shown))
        for key in sorted(self.remove, key=order):
            lines.append("- %s" % self.key_text(key))
        for key in sorted(self.update, key=order):
            old, new = self.update[key]
            lines.append("~ %s: %s -> %s" % (self.key_text(key), self.value_text(old), self.value_text(new)))
        return lines

    def diff(self):
        lines = self.diff_lines()
        if len(lines) > DIFF_LINES:
            lines = lines[:DIFF_LINES] + ["... and %d more (%d added, %d removed, %d changed in all)"
                                          % (len(lines) - DIFF_LINES, len(self.add), len(self.remove),
                                             len(self.update))]
        return "\n".join(lines) + ("\n" if lines else "")


def decode_entries(pinned, typing, contents):
    """Entries as people write them; per-CPU values summed (and listed per CPU)."""
    out = []
    vcodec = typing.value
    for key in sorted(contents, key=typing.key.sort_key):
        raw = contents[key]
        entry = {"key": typing.key.decode(key)}
        if pinned.type in PERCPU:
            per_cpu = [vcodec.decode(raw[i * pinned.stride:i * pinned.stride + pinned.value_size])
                       for i in range(pinned.ncpu)]
            entry["per_cpu"] = per_cpu
            entry["value"] = _sum(per_cpu)
        else:
            entry["value"] = vcodec.decode(raw[:pinned.value_size])
        out.append(entry)
    return out


def _sum(values):
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return sum(values)
    if all(isinstance(v, dict) for v in values) and values:
        return {k: _sum([v[k] for v in values]) for k in values[0]}
    return values


def sync(path, key=None, value=None, entries=None, state="present", exclusive=False, key_type=None,
         value_type=None, check_mode=False, return_entries=False):
    """The map operation behind xdp_map_entry; returns the result dict."""
    wanted = normalize(key, value, entries)
    with PinnedMap(path) as pinned:
        typing = Typing(pinned, key_type, value_type, [w[1] for w in wanted], [w[2] for w in wanted])
        change = Sync(pinned, typing, wanted, state, exclusive)
        result = {
            "changed": change.changed, "path": path, "map_type": pinned.type_name,
            "key_type": typing.key.name, "value_type": typing.value.name,
            "added": len(change.add), "removed": len(change.remove), "updated": len(change.update),
            "diff": {"before_header": path, "after_header": path, "prepared": change.diff()},
        }
        if change.changed and not check_mode:
            change.apply()
        if return_entries:
            contents = pinned.dump() if change.changed and not check_mode else change.current
            result["entries"] = decode_entries(pinned, typing, contents)
        return result
