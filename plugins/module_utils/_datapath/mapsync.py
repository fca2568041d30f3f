"""Map sync: make a pinned map hold the entries an operator asked for, and say what changed.

Every entry is parsed and encoded before the map is touched; the plan
(add, update, remove) comes from comparing bytes with a full dump; a
kernel refusal half-way puts back exactly what the map held.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import ctypes
import errno
import hashlib
import heapq
import os
import struct
from collections.abc import Mapping
from itertools import compress

from . import denyhits, indexes, keybuf, keycache
from .errors import DatapathError
from .kernel import bpffs, libbpf
from .kernel.maps import ARRAYS, DEVMAP, PERCPU, PinnedMap, records
from .record.store import StateStore
from .types import codecs
from .types.map_types import MapTypes

DIFF_LINES = 300
CHUNK_RANGE = 65537  # entries per batch lookup of a packed run
GUESS_SAMPLE = 64  # entries looked at to tell addresses from numbers in an untyped field


def map_path(path: str | None = None, *, interface: str | None = None, name: str | None = None,
             map_name: str | None = None, bpffs_path: str = bpffs.DEFAULT_BPFFS) -> str:
    """The pinned path of a map given directly, or by interface + program name + map name, each checked so
    that none of them reaches out of the program's folder."""
    if path:
        return path
    if not (interface and name and map_name):
        raise DatapathError("name the map by path, or by interface, name (of the program) and map.")
    bpffs.check_name(name)
    bpffs.check_map_name(map_name)
    return os.path.join(bpffs.interface_dir(bpffs_path, interface), name, "maps", map_name)


class Wanted:
    """The requested entries as two parallel lists; entry i (from 1) is keys[i-1], values[i-1] (None: not given)."""

    def __init__(self, keys, values):
        self.keys = keys
        self.values = values

    def __iter__(self):
        return ((i, k, v) for i, (k, v) in enumerate(zip(self.keys, self.values), 1))

    def __len__(self):
        return len(self.keys)


def normalize(key: object = None, value: object = None, entries: object = None) -> Wanted:
    """Wanted entries from one key, a list of {key, value}, a dict, or a plain list of keys."""
    if entries is None:
        return Wanted([] if key is None else [key], [] if key is None else [value])
    if isinstance(entries, dict):
        return Wanted(list(entries), list(entries.values()))
    if not isinstance(entries, list):
        raise DatapathError("entries must be a list or a dict, not %s." % type(entries).__name__)
    if dict not in map(type, entries):  # a plain list of keys: the blocklist case (one C-level pass, no set)
        return Wanted(entries, [None] * len(entries))
    keys, values = [], []
    for i, item in enumerate(entries, 1):
        if isinstance(item, dict) and "key" in item:
            extra = set(item) - {"key", "value"}
            if extra:
                raise DatapathError("entry %d has unknown field %r; an entry has key and value."
                                    % (i, sorted(extra)[0]))
            keys.append(item["key"])
            values.append(item.get("value"))
        else:
            keys.append(item)
            values.append(None)
    return Wanted(keys, values)


class KeyWanted:
    """A plain list of keys (no values) that came as the map's own key bytes (keybuf.KeyBuffer, a feed), with a few
    entries given inline as text beside it; a sync writes the bytes as they are when the map's key has their
    layout, and reads them as text otherwise (resolved())."""

    values = ()  # no entry gives a value

    def __init__(self, packed: keybuf.KeyBuffer, inline: list):
        self.packed, self.inline = packed, list(inline)

    def __len__(self):
        return len(self.packed) + len(self.inline)

    def sample(self, limit: int = GUESS_SAMPLE) -> list:
        """The first entries as text (what an untyped map's key is guessed from, and what a preview shows)."""
        return (self.inline + self.packed.texts(limit))[:limit]

    def as_text(self) -> Wanted:
        keys = self.inline + self.packed.texts()
        return Wanted(keys, [None] * len(keys))

    def resolved(self, codec) -> KeyWanted | Wanted:
        """For a map whose key codec is `codec`: the keys as one buffer (inline entries encoded and added unless
        the packed keys hold them), or, when the map's key is not the packed layout, every entry as text."""
        if codec.name != self.packed.key_type or codec.size != self.packed.size:
            return self.as_text()
        if not self.inline:
            return self
        try:
            extra = codec.encode_many(self.inline)
        except (ValueError, TypeError):
            return self.as_text()  # the text path names the entry that is wrong
        view = _Records(self.packed.raw, self.packed.size)
        new = [k for k in dict.fromkeys(extra) if not _sorted_holds(view, k)]
        return KeyWanted(keybuf.KeyBuffer(self.packed.raw + b"".join(new), self.packed.key_type), [])


class _Records:
    """Fixed-size records of a buffer by index (what bisect needs of a sorted buffer of keys)."""

    def __init__(self, raw, size):
        self.raw, self.size = raw, size

    def __len__(self):
        return len(self.raw) // self.size

    def __getitem__(self, i):
        return self.raw[i * self.size:(i + 1) * self.size]


def _sorted_holds(view, key) -> bool:
    i = bisect.bisect_left(view, key)
    return i < len(view) and view[i] == key


def wanted_of(spec: dict) -> Wanted | KeyWanted:
    """The entries of one map's spec: its entries, and its keys when a packed feed came as key bytes."""
    if spec.get("keys") is not None:
        return KeyWanted(spec["keys"], spec.get("entries") or [])
    return normalize(entries=spec.get("entries") or [])


def plan_sync(current: dict, wanted: dict, given_values: bool, blank: bytes, *, state: str = "present",
              exclusive: bool = False, array: bool = False) -> tuple[dict, dict, dict]:
    """(add, update, remove) that make a map holding current ({key: value bytes}) hold wanted.

    Pure: wanted maps key bytes to value bytes (None where no value was
    given); update holds (old, new) pairs. An array's index always exists, so
    "removing" one that is already blank changes nothing.
    """
    add, update, remove = {}, {}, {}
    if state == "absent":
        remove = {k: current[k] for k in wanted.keys() & current.keys()}
    elif exclusive and not given_values and wanted.keys() == current.keys():
        pass  # the re-run of a list that is already in place: one set comparison, nothing to build
    else:
        new = wanted.keys() - current.keys()
        if given_values:
            add = {k: wanted[k] or blank for k in new}
            for key, value in wanted.items():
                old = current.get(key)
                if value is not None and old is not None and value != old:
                    update[key] = (old, value)
        else:
            add = dict.fromkeys(new, blank)
        if exclusive:
            remove = {k: current[k] for k in current.keys() - wanted.keys()}
    if array:
        remove = {k: v for k, v in remove.items() if v != blank}
    return add, update, remove


def plan_keys(current: list, wanted: set, *, state: str = "present", exclusive: bool = False) -> tuple[set, set]:
    """(keys to add, keys to remove) that make a map holding the keys current (each once, as a dump lists them)
    hold the keys wanted: plan_sync for a list without values, on sets of keys (no dict of the map is built)."""
    if state == "absent":
        return set(), wanted.intersection(current)
    if not current:
        return wanted, set()
    held = set(current)
    add = wanted - held
    if not exclusive or len(wanted) - len(add) == len(held):  # every current key is wanted: none to remove
        return add, set()
    return add, held - wanted


class Blank(Mapping):
    """Keys that all hold one value (the zeros of a list without values): a read-only dict without the dict."""

    def __init__(self, keys, value):
        self._keys, self.value = keys, value

    def __getitem__(self, key):
        if key in self._keys:
            return self.value
        raise KeyError(key)

    def __contains__(self, key):
        return key in self._keys

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)

    def packed(self) -> keybuf.KeyBuffer | None:
        """The keys as one buffer, when they came so (written as they are)."""
        return self._keys if isinstance(self._keys, keybuf.KeyBuffer) else None


class EntryEncoder:
    """The operator's entries as the bytes of one map's keys and values (per-CPU values spread over the CPUs)."""

    def __init__(self, pinned, typing):
        self.map, self.typing = pinned, typing

    def encode(self, wanted: Wanted) -> tuple[dict | set, bool]:
        """({key bytes: value bytes or None}, True), or ({key bytes}, False) when no entry gives a value; the first
        bad entry raises by position."""
        venc = self.encode_value
        given_values = wanted.values.count(None) != len(wanted.values)
        try:
            keys = self.typing.key.encode_many(wanted.keys)
            values = [None if v is None else venc(v) for v in wanted.values] if given_values else wanted.values
        except ValueError:
            self._explain(wanted)
            raise
        if not given_values:  # a plain list of keys (the blocklist case): a repeated key is the same entry
            return set(keys), False
        out = dict(zip(keys, values))
        if len(out) != len(keys):
            self._check_repeats(wanted, keys, values)
        return out, given_values

    def _explain(self, wanted):
        """Find the entry that does not encode and say which it is."""
        for position, key, value in wanted:
            label = "entry %d (key %r)" % (position, key)
            try:
                self.typing.key.encode(key)
            except ValueError as exc:
                if str(key) in str(exc):  # the codec's sentence names the key already
                    label = "entry %d" % position
                raise DatapathError("%s: %s; the map was not changed." % (label, exc)) from None
            if value is not None:
                try:
                    self.encode_value(value)
                except ValueError as exc:
                    raise DatapathError("%s: its value: %s; the map was not changed." % (label, exc)) from None

    @staticmethod
    def _check_repeats(wanted, keys, values):
        first = {}
        for (position, key, _value), raw_key, raw_value in zip(wanted, keys, values):
            if raw_key in first and first[raw_key][1] != raw_value:
                raise DatapathError("entry %d (key %r) repeats the key of entry %d with another value; the map was "
                                    "not changed." % (position, key, first[raw_key][0]))
            first.setdefault(raw_key, (position, raw_value))

    def encode_value(self, value: object) -> bytes:
        m, vcodec = self.map, self.typing.value
        if m.type not in PERCPU:
            return vcodec.encode(value)
        if isinstance(value, list) and not isinstance(vcodec, codecs.HexCodec):
            if len(value) != m.ncpu:
                raise ValueError("a per-CPU value is one value or a list of %d (one per possible CPU), got a list "
                                 "of %d" % (m.ncpu, len(value)))
            parts = [vcodec.encode(v) for v in value]
        else:
            parts = [vcodec.encode(value)] * m.ncpu
        return b"".join(p.ljust(m.stride, b"\0") for p in parts)


class Sync:
    """The change that makes one map hold the requested entries.

    The map is read once (dump_packed: its keys, and its values back to back); a list without values is
    planned on sets of keys, and the values of the entries it removes are cut out of the dump only for those.
    """

    def __init__(self, pinned, typing, wanted, state="present", exclusive=False):
        self.map, self.typing = pinned, typing
        if isinstance(wanted, KeyWanted):  # the keys' bytes already: nothing to parse
            self.encoded, self.given_values = wanted.packed, False
        else:
            self.encoded, self.given_values = EntryEncoder(pinned, typing).encode(wanted)
        self.current_keys, self._current_values = pinned.dump_packed()
        self._current = None
        self.exclusive, self.state = exclusive, state
        if isinstance(self.encoded, keybuf.KeyBuffer) and (self.current_keys or state == "absent"):
            self.encoded = self.encoded.as_set()  # compared with what the map holds: as a set
        if self.given_values or pinned.type in ARRAYS:
            self.add, self.update, self.remove = plan_sync(
                self.current, self._as_dict(self.encoded), self.given_values, self._blank(), state=state,
                exclusive=exclusive, array=pinned.type in ARRAYS)
        else:
            add, remove = plan_keys(self.current_keys, self.encoded, state=state, exclusive=exclusive)
            blank = self._blank()
            if self._current_values == bytes(len(self._current_values)):  # every value is zeros: no cutting
                self.add, self.update, self.remove = Blank(add, blank), {}, Blank(remove, blank)
            else:
                self.add, self.update, self.remove = Blank(add, blank), {}, self._values_of(remove)
        self._check_capacity()

    @staticmethod
    def _as_dict(encoded):
        return encoded if isinstance(encoded, dict) else dict.fromkeys(encoded)

    @property
    def held(self) -> int:
        """How many elements the map held when the sync was planned."""
        return len(self.current_keys)

    @property
    def current(self) -> dict:
        """{key bytes: value bytes} the map held when the sync was planned (built on first use)."""
        if self._current is None:
            self._current = dict(zip(self.current_keys, records(self._current_values, self.map.slot_size)))
        return self._current

    def _values_of(self, keys: set) -> dict:
        """{key: the value it held} for some of the map's keys, cut out of the dump."""
        if not keys:
            return {}
        if self._current is not None:
            return {k: self._current[k] for k in keys}
        size, values, listed = self.map.slot_size, self._current_values, self.current_keys
        return {listed[i]: values[i * size:(i + 1) * size]
                for i in compress(range(len(listed)), map(keys.__contains__, listed))}

    def new_keys(self):
        """The keys the map holds once the change is applied (for the refresh of an index that covers it)."""
        if self.state != "absent" and self.exclusive and not self.given_values:
            return self.encoded  # exactly the keys asked for
        if not self.remove:
            return self.current_keys if not self.add else [*self.current_keys, *self.add]
        kept = set(self.current_keys)
        kept.difference_update(self.remove)
        kept.update(self.add)
        return kept

    def _blank(self):
        return b"\0" * self.map.slot_size

    def _check_capacity(self):
        if self.map.type in ARRAYS or self.map.type == DEVMAP:
            return
        needed = self.held - len(self.remove) + len(self.add)
        if needed > self.map.max_entries:
            raise DatapathError("map %s is too small: max_entries %d, needed %d; the map was not changed (raise "
                                "max_entries in the program or send fewer entries)."
                                % (self.map.path, self.map.max_entries, needed))

    @property
    def changed(self) -> bool:
        return bool(self.add or self.update or self.remove)

    # applying -------------------------------------------------------------
    def apply(self) -> None:
        """Delete, then write; on a kernel refusal put the old contents back and raise.

        A list that an index of its program covers (indexes/) has its new keys covered before they are
        written; the index is refreshed after the sync (indexes.refresh)."""
        m = self.map
        index = indexes.for_list(m.path)
        if index and self.add:
            index.cover(os.path.basename(m.path), self.add)
        try:
            m.delete(list(self.remove))
            packed = self.add.packed() if isinstance(self.add, Blank) else None
            keys = packed.raw if packed is not None else [*self.add, *self.update]
            if isinstance(self.add, Blank):  # only new keys, all zeros: one zeroed buffer
                values = bytes(m.slot_size * len(self.add))
            else:
                values = b"".join(self.add.values()) + b"".join(new for _old, new in self.update.values())
            m.write_packed(keys, values)
        except OSError as exc:
            self.restore()
            limit = ""
            if exc.errno in (errno.E2BIG, errno.ENOSPC, errno.ENOMEM):
                limit = " (max_entries %d, needed %d)" % (m.max_entries, self.held - len(self.remove) + len(self.add))
            raise DatapathError("the kernel refused the update of %s: %s%s; the map was put back as it was."
                                % (m.path, os.strerror(exc.errno), limit)) from None

    def restore(self) -> None:
        """Put back what the map held when this sync was planned."""
        m = self.map
        now = m.dump()
        extra = [k for k in now if k not in self.current]
        if m.type in ARRAYS:
            extra = []
        index = indexes.for_list(m.path)
        if index:
            index.cover(os.path.basename(m.path), [k for k in self.current if k not in now])
        m.delete(extra)
        m.write([(k, v) for k, v in self.current.items() if now.get(k) != v])

    # showing ----------------------------------------------------------------
    def key_text(self, raw: bytes) -> str:
        return self.typing.key.text(raw)

    def value_text(self, raw: bytes) -> str:
        m, vcodec = self.map, self.typing.value
        if m.type not in PERCPU:
            return vcodec.text(raw[:m.value_size])
        return "[%s]" % ", ".join(vcodec.text(raw[i * m.stride:i * m.stride + m.value_size]) for i in range(m.ncpu))

    def diff_lines(self, limit: int | None = None) -> list[str]:
        """'+ key[: value]', '- key', '~ key: old -> new', in key order; only the first `limit` are rendered."""
        order = self.typing.key.sort_key
        blank = self._blank()

        def first(keys: dict) -> list[bytes]:
            if limit is not None and len(keys) > limit:
                return heapq.nsmallest(limit, keys, key=order)
            return sorted(keys, key=order)
        groups = [("+", first(self.add)), ("-", first(self.remove)), ("~", first(self.update))]
        lines = []
        for sign, keys in groups:
            for key in keys:
                if limit is not None and len(lines) >= limit:
                    return lines
                if sign == "+":
                    value = self.add.value if isinstance(self.add, Blank) else self.add[key]
                    shown = "" if value == blank else ": %s" % self.value_text(value)
                    lines.append("+ %s%s" % (self.key_text(key), shown))
                elif sign == "-":
                    lines.append("- %s" % self.key_text(key))
                else:
                    old, new = self.update[key]
                    lines.append("~ %s: %s -> %s" % (self.key_text(key), self.value_text(old), self.value_text(new)))
        return lines

    def diff(self) -> str:
        return prepared(self.diff_lines(DIFF_LINES), len(self.add), len(self.remove), len(self.update))


def _keeps(state_dir, pinned, wanted, state, exclusive) -> bool:
    return bool(state_dir) and exclusive and state == "present" and keycache.usable(pinned, wanted)


def kept_after(state_dir, pinned, wanted, state, exclusive, change) -> None:
    """Keep (or forget) the key set of a plain list after its sync was applied, or found to have nothing to do."""
    wanted = getattr(change, "wanted", wanted)  # as the sync took it (keys sent as bytes may have become text)
    if state_dir and exclusive and state == "present":
        if keycache.usable(pinned, wanted):
            _keep(state_dir, pinned, change.typing.key.name, wanted, change)
        else:
            keycache.forget(state_dir, pinned.path)
    elif state_dir:
        keycache.forget(state_dir, pinned.path)


class Drifted(Exception):
    """The kept key set does not prove what the map holds: take the full path."""


class KeptSync(Sync):
    """The Sync of a plain list whose last synced entries the host kept (keycache.py): only the entries that differ
    between the kept list and the new one are encoded; the map is read once, into a digest of its keys, to prove
    it still holds the kept set (its keys are cut apart only when someone needs them: a restore, the prefilter)."""

    def __init__(self, pinned, typing, wanted, kept, header):
        self.map, self.typing = pinned, typing
        self.given_values, self.exclusive, self.state, self._current = False, True, "present", None
        self._dumped = None
        count, digest = pinned.key_digest()
        if count != header["count"] or digest != header["digest"]:
            raise Drifted()
        self._held, self.wanted_set = count, None
        blank = self._blank()
        if isinstance(wanted, KeyWanted) != isinstance(kept, bytes):
            raise Drifted()  # kept as text, sent as keys (or the other way): the full path keeps it anew
        if isinstance(wanted, KeyWanted):
            self._plan_keys(wanted, kept, blank)
            return
        if wanted.keys == kept:  # the no-op re-run: one list comparison
            self.add, self.update, self.remove = Blank(set(), blank), {}, Blank(set(), blank)
            return
        new = set(wanted.keys)
        differ = new.symmetric_difference(kept)  # entries added or removed, as given
        added = [k for k in differ if k in new]
        encode = typing.key.encode_many
        try:
            add, remove = set(encode(added)), set(encode(list(differ.difference(added))))
        except (ValueError, TypeError):
            raise Drifted() from None  # not a plain list of good entries: the full path names the bad one
        moved = add & remove  # another spelling of an entry that stays: neither added nor removed
        add -= moved
        remove -= moved
        self.wanted_set = new
        if count and self._any_held(add):
            raise Drifted()  # a new spelling of a kept entry: the full path sorts it out
        self.add, self.update, self.remove = Blank(add, blank), {}, Blank(remove, blank)
        self._check_capacity()

    def _plan_keys(self, wanted, kept, blank):
        """Keys sent as bytes against the bytes kept: one comparison for a no-op, set differences of the keys
        otherwise (a key has one spelling, so no lookup is needed: the proof says the map holds exactly kept)."""
        self._exact = wanted.packed  # what the map holds once the change is applied
        if wanted.packed.raw == kept:
            self.add, self.update, self.remove = Blank(set(), blank), {}, Blank(set(), blank)
            return
        if not kept:  # an empty map: every key is new, written from the buffer as it is
            self.add, self.update, self.remove = Blank(wanted.packed, blank), {}, Blank(set(), blank)
        else:
            add, remove = keybuf.differences(wanted.packed.raw, kept, wanted.packed.size)
            kind = wanted.packed.key_type
            self.add, self.update = Blank(keybuf.KeyBuffer(add, kind), blank), {}
            self.remove = Blank(keybuf.KeyBuffer(remove, kind), blank)
        self._check_capacity()

    def _any_held(self, keys) -> bool:
        lookup, fd = libbpf.lib().bpf_map_lookup_elem, self.map.fd
        value = ctypes.create_string_buffer(self.map.slot_size)
        return any(lookup(fd, k, value) == 0 for k in keys)

    @property
    def held(self) -> int:
        return self._held

    @property
    def current_keys(self) -> list:
        if self._dumped is None:
            self._dumped = self.map.dump_packed()
        return self._dumped[0]

    @property
    def _current_values(self) -> bytes:
        if self._dumped is None:
            self._dumped = self.map.dump_packed()
        return self._dumped[1]

    def new_keys(self):
        if getattr(self, "_exact", None) is not None:  # keys sent as bytes: exactly those (no read of the map)
            return self._exact
        kept = set(self.current_keys)
        kept.difference_update(self.remove)
        kept.update(self.add)
        return kept

    def apply(self) -> None:
        """Sync.apply, having first read the values of the keys it removes (all restore() needs: the map was not
        dumped into a dict, and a dump after the write would show the new contents)."""
        lookup, fd = libbpf.lib().bpf_map_lookup_elem, self.map.fd
        value = ctypes.create_string_buffer(self.map.slot_size)
        self._removed = [(k, value.raw) for k in self.remove if lookup(fd, k, value) == 0]
        super().apply()

    def restore(self) -> None:
        """Put back what the map held when this sync was planned: the added keys out, the removed ones back."""
        index = indexes.for_list(self.map.path)
        back = [(k, v) for k, v in getattr(self, "_removed", []) if v is not None]
        if index:
            index.cover(os.path.basename(self.map.path), [k for k, _v in back])
        self.map.delete([k for k in self.add if libbpf.map_lookup(self.map.fd, k, self.map.slot_size) is not None])
        self.map.write(back)


def _keep(state_dir, pinned, key_type, wanted, change) -> None:
    """After a sync of a plain list: keep its entries and the proof of what the map now holds (or forget)."""
    distinct = change.wanted_set if isinstance(change, KeptSync) else None
    if isinstance(change, KeptSync) and not change.changed:
        return  # the kept entries and the proof still hold
    count, digest = pinned.key_digest()
    if isinstance(wanted, KeyWanted):  # the map holds exactly these keys: as many as the buffer unless one repeats
        if len(wanted.packed) != count:
            keycache.forget(state_dir, pinned.path)
            return
        keycache.save(state_dir, pinned, key_type, wanted.packed.raw, count, digest)
        return
    if distinct is None:
        distinct = set(wanted.keys)
    if len(distinct) != count:
        keycache.forget(state_dir, pinned.path)  # two spellings of one key: the full path next time
        return
    keycache.save(state_dir, pinned, key_type, wanted.keys, count, digest)


def prepared(lines: list[str], added: int, removed: int = 0, changed: int = 0) -> str:
    """Diff text: at most DIFF_LINES of the lines, then one line counting what was left out."""
    total = added + removed + changed
    if total > DIFF_LINES:
        lines = lines[:DIFF_LINES] + ["... and %d more (%d added, %d removed, %d changed in all)"
                                      % (total - DIFF_LINES, added, removed, changed)]
    return "\n".join(lines) + ("\n" if lines else "")


def decode_entries(pinned: PinnedMap, typing: MapTypes, contents: dict[bytes, bytes]) -> list[dict]:
    """Entries as people write them; per-CPU values summed (and listed per CPU)."""
    out = []
    vcodec = typing.value
    pooled = denyhits.per_cpu_counts(pinned, contents)  # a firewall deny hash: its values are counter slots
    for key in sorted(contents, key=typing.key.sort_key):
        raw = contents[key]
        entry = {"key": typing.key.decode(key)}
        if pooled is not None:
            entry["per_cpu"] = pooled[key]
            entry["value"] = sum(pooled[key])
        elif pinned.type in PERCPU:
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


def _unpinned_preview(path, wanted, diff):
    """Check mode, map not pinned yet: its program is itself only previewed (by an earlier task of the run)."""
    if isinstance(wanted, KeyWanted):  # shown as text: the lines a diff shows, and the count of all
        shown = wanted.sample(DIFF_LINES)
        result = _unpinned_preview(path, Wanted(shown, [None] * len(shown)), diff)
        result["changed"], result["added"] = len(wanted) > 0, len(wanted)
        if diff:
            result["diff"]["prepared"] = prepared(["+ %s" % k for k in shown], len(wanted))
        return result
    result = {"changed": len(wanted) > 0, "path": path, "map_type": None, "key_type": None, "value_type": None,
              "added": len(wanted), "removed": 0, "updated": 0, "pinned": False,
              "msg": "%s is not pinned yet (expected on a first preview); the entries are shown as given, "
                     "assuming an earlier task of the run deploys its program." % path}
    if diff:
        lines = ["+ %s" % (k if v is None else "%s => %s" % (k, v)) for k, v in zip(wanted.keys, wanted.values)]
        result["diff"] = {"before_header": path, "after_header": path, "prepared": prepared(lines, len(lines))}
    return result


def sync(path: str, *, key: object = None, value: object = None, entries: object = None, state: str = "present",
         exclusive: bool = False, key_type: str | None = None, value_type: str | None = None,
         check_mode: bool = False, return_entries: bool = False, diff: bool = True,
         state_dir: str | None = None, keys: keybuf.KeyBuffer | None = None) -> dict:
    """The map operation behind bpf_map_entry; returns the result dict.

    With state_dir (the module always passes it) the sync holds the host lock
    that deploys take, so two runs cannot interleave their syncs and restores.
    keys: a plain list of keys as their bytes (a packed feed), beside any entries.
    """
    wanted = normalize(key, value, entries) if keys is None else KeyWanted(keys, entries or [])
    if state_dir is None:
        return _sync(path, wanted, state, exclusive, key_type, value_type, check_mode, return_entries, diff)
    store = StateStore(state_dir)
    with store.lock():
        store.refuse_after_expiry()
        return _sync(path, wanted, state, exclusive, key_type, value_type, check_mode, return_entries, diff,
                     state_dir)


def _sync(path, wanted, state, exclusive, key_type, value_type, check_mode, return_entries, diff, state_dir=None):
    if check_mode and state == "present" and not os.path.exists(path):
        return _unpinned_preview(path, wanted, diff)
    with PinnedMap(path) as pinned:
        change, result = _plan(pinned, wanted, state, exclusive, key_type, value_type, diff, state_dir)
        if change.changed and not check_mode:
            change.apply()
        if not check_mode:
            kept_after(state_dir, pinned, wanted, state, exclusive, change)
        if not check_mode:
            indexes.refresh([path], {path: change.new_keys()} if indexes.for_list(path) else None)
        if return_entries:
            contents = pinned.dump() if change.changed and not check_mode else change.current
            result["entries"] = decode_entries(pinned, change.typing, contents)
        return result


def _plan(pinned, wanted, state, exclusive, key_type, value_type, diff, state_dir=None):
    """(the Sync that makes pinned hold wanted, the result keys that describe it); changes nothing. With
    state_dir, a plain list whose last synced entries the host kept is planned from them (KeptSync)."""
    if isinstance(wanted, KeyWanted):
        sample = wanted.sample()
        typing = MapTypes(pinned, key_type, value_type, sample, [None] * len(sample))
        wanted = wanted.resolved(typing.key)
    else:
        typing = MapTypes(pinned, key_type, value_type, wanted.keys[:GUESS_SAMPLE], wanted.values[:GUESS_SAMPLE])
    change = None
    if _keeps(state_dir, pinned, wanted, state, exclusive):
        kept = keycache.load(state_dir, pinned, typing.key.name)
        if kept is not None:
            try:
                change = KeptSync(pinned, typing, wanted, kept[1], kept[0])
            except Drifted:
                change = None
    if change is None:
        change = Sync(pinned, typing, wanted, state, exclusive)
    change.wanted = wanted
    result = {
        "changed": change.changed, "path": pinned.path, "map_type": pinned.type_name,
        "key_type": typing.key.name, "value_type": typing.value.name,
        "added": len(change.add), "removed": len(change.remove), "updated": len(change.update),
    }
    if diff:  # rendering sorts the change: only when someone will read it
        result["diff"] = {"before_header": pinned.path, "after_header": pinned.path, "prepared": change.diff()}
    return change, result


def sync_all(specs: list, *, interface: str, name: str, bpffs_path: str = bpffs.DEFAULT_BPFFS,
             check_mode: bool = False, diff: bool = True, state_dir: str | None = None) -> dict:
    """Several maps of one program in one go: every entry of every map is checked before any map changes,
    and a kernel refusal in one map puts back the maps already written.

    specs: [{map, entries, key_type, value_type, exclusive, state}]. Returns {changed, maps: {map: result},
    diff: [one per map]}.
    """
    seen = set()
    for spec in specs:
        if spec.get("map") in seen:
            raise DatapathError("maps names map %s twice; give each map once, with all its entries." % spec["map"])
        seen.add(spec.get("map"))
    paths = [(spec, map_path(interface=interface, name=name, map_name=spec.get("map"), bpffs_path=bpffs_path))
             for spec in specs]
    with StateStore(state_dir).lock() if state_dir else contextlib.nullcontext():
        if state_dir:
            StateStore(state_dir).refuse_after_expiry()
        opened, plans = [], []
        try:
            for spec, path in paths:
                wanted = wanted_of(spec)
                state = spec.get("state") or "present"
                if check_mode and state == "present" and not os.path.exists(path):
                    plans.append((spec, None, _unpinned_preview(path, wanted, diff)))
                    continue
                pinned = PinnedMap(path)
                opened.append(pinned)
                try:
                    change, result = _plan(pinned, wanted, state, bool(spec.get("exclusive")), spec.get("key_type"),
                                           spec.get("value_type"), diff, state_dir)
                except DatapathError as exc:
                    raise DatapathError("map %s: %s" % (spec["map"], exc.message)) from None
                plans.append((spec, change, result))
            refuse_emptying(plans)
            if not check_mode:
                known = {}  # the lists' keys after the change, when every map took it (else read again)
                try:
                    _apply_all([change for _spec, change, _result in plans if change is not None and change.changed])
                    for (spec, change, _result), pinned in zip([p for p in plans if p[1] is not None], opened):
                        kept_after(state_dir, pinned, wanted_of(spec),
                                   spec.get("state") or "present", bool(spec.get("exclusive")), change)
                    known = {path: change.new_keys() for (_s, change, _r), (_spec, path) in zip(plans, paths)
                             if change is not None and indexes.for_list(path)}
                finally:
                    indexes.refresh([path for _spec, path in paths if os.path.exists(path)], known)
        finally:
            for pinned in opened:
                pinned.close()
    out = {"changed": any(r["changed"] for _s, _c, r in plans), "maps": {}}
    unpinned = [spec["map"] for spec, change, _result in plans if change is None]
    if unpinned:  # one line for the task, not one per map: a first preview is expected to find none pinned
        out["msg"] = ("%s not pinned yet (expected on a first preview); entries are shown as given, assuming an "
                      "earlier task of the run deploys the program." % ", ".join(unpinned))
    for spec, _change, result in plans:
        if diff:
            out.setdefault("diff", []).append(result.pop("diff"))
        out["maps"][spec["map"]] = result
    return out


def refuse_emptying(plans: list) -> None:
    """The exclusive maps whose specs say allow_empty: false are one list (a firewall's deny lists): refuse a sync
    that takes them all down to none while they hold entries (a feed that came back empty or cut short)."""
    guarded = [(spec, change) for spec, change, _result in plans
               if change is not None and not spec.get("allow_empty", True) and spec.get("exclusive")
               and (spec.get("state") or "present") == "present"]
    held = sum(change.held for _spec, change in guarded)
    if not held or any(change.add or len(change.remove) < change.held for _spec, change in guarded):
        return
    names = ", ".join(spec["map"] for spec, _change in guarded)
    raise DatapathError(
        "%s %s %d entr%s and the entries given for %s are none, which would empty %s (an empty or truncated feed?); "
        "no map was changed: fix the feed, or set %s: true to empty %s on purpose."
        % ("map" if len(guarded) == 1 else "maps", names + (" holds" if len(guarded) == 1 else " hold"), held,
           "y" if held == 1 else "ies", "it" if len(guarded) == 1 else "them", "it" if len(guarded) == 1 else "them",
           guarded[0][0].get("allow_empty_var") or "allow_empty", "it" if len(guarded) == 1 else "them"))


def _apply_all(changes) -> None:
    done = []
    try:
        for change in changes:
            change.apply()  # puts its own map back when the kernel refuses
            done.append(change)
    except DatapathError:
        for change in reversed(done):
            change.restore()
        raise


# ---- a packed run of array values (the load balancer's Maglev tables) ------------------------------------------

def _read_range(pinned, offset, count):
    """The raw values of array entries offset .. offset+count-1, back to back (batch lookups: the token of an
    array is the index before the first one read)."""
    lib = libbpf.lib()
    chunk = min(count, CHUNK_RANGE) or 1
    keys = ctypes.create_string_buffer(4 * chunk)
    values = ctypes.create_string_buffer(pinned.slot_size * chunk)
    token_in, token_out = ctypes.create_string_buffer(4), ctypes.create_string_buffer(4)
    raw, start = bytearray(), offset
    while len(raw) < count * pinned.slot_size:
        want = ctypes.c_uint32(min(chunk, offset + count - start))
        if start:
            struct.pack_into("I", token_in, 0, start - 1)
        ret = lib.bpf_map_lookup_batch(pinned.fd, token_in if start else None, token_out, keys, values,
                                       ctypes.byref(want), ctypes.byref(pinned._opts))
        if ret < 0 and -ret != errno.ENOENT:
            libbpf.check(ret, "read %s" % pinned.path)
        if not want.value:
            break
        raw += values.raw[:want.value * pinned.slot_size]
        start += want.value
    return bytes(raw[:count * pinned.slot_size])


def sync_packed(path: str, packed: str, offset: int = 0, digest: str | None = None, *, count: int | None = None,
                check_mode: bool = False, diff: bool = True, state_dir: str | None = None) -> dict:
    """Make array entries offset.. hold the values packed (base64 of the values' bytes back to back).

    Compares byte by byte with what the map holds and writes only the entries that differ, so a second run
    changes nothing; with digest (the first hex digits of the values' sha256) it refuses values that do not
    match it, and checks the map against it after writing. With count, the run is count entries long: the
    entries after the packed values are set to zero (a smaller table, or the tables of removed services)."""
    try:
        raw = base64.b64decode(packed, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise DatapathError("packed is not base64; give the values' bytes back to back, base64-encoded.") from None
    if digest and not hashlib.sha256(raw).hexdigest().startswith(str(digest).lower()):
        raise DatapathError("packed does not match packed_digest %s (it hashes to %s); the values were damaged "
                            "on the way, run again." % (digest, hashlib.sha256(raw).hexdigest()[:16]))
    if check_mode and not os.path.exists(path):  # its program is itself only previewed by an earlier task
        return {"changed": True, "pinned": False, "path": path, "added": 0, "removed": 0,
                "updated": 0, "packed_digest": hashlib.sha256(raw).hexdigest()[:16],
                "msg": "%s is not pinned yet; its program is deployed first." % path}
    with StateStore(state_dir).lock() if state_dir else contextlib.nullcontext(), PinnedMap(path) as pinned:
        if pinned.type_name != "array" or pinned.key_size != 4:
            raise DatapathError("packed values go into an array map, and %s is a %s map; use entries for it."
                                % (path, pinned.type_name))
        size = pinned.value_size
        given_digest = hashlib.sha256(raw).hexdigest()[:16]
        given = len(raw) // size
        count = given if count is None else count
        if count < given:
            raise DatapathError("packed holds %d values, more than packed_count %d; give a larger count."
                                % (given, count))
        raw += b"\0" * (size * (count - given))
        if len(raw) % size or offset < 0 or offset + count > pinned.max_entries:
            raise DatapathError("packed holds %d bytes from entry %d, which is not a whole number of %d-byte "
                                "values inside the map's %d entries; check the values and packed_offset."
                                % (len(raw), offset, size, pinned.max_entries))
        current = _read_range(pinned, offset, count)
        differ = [i for i in range(count) if current[i * size:(i + 1) * size] != raw[i * size:(i + 1) * size]]
        result = {"changed": bool(differ), "path": path, "map_type": pinned.type_name, "added": 0,
                  "removed": 0, "updated": len(differ), "packed_count": count, "packed_digest": given_digest}
        if diff:
            moves = {}
            for i in differ:
                pair = (current[i * size:(i + 1) * size].hex(), raw[i * size:(i + 1) * size].hex())
                moves[pair] = moves.get(pair, 0) + 1
            lines = ["~ %d entries %s -> %s" % (n, a, b) for (a, b), n in
                     sorted(moves.items(), key=lambda kv: -kv[1])[:20]]
            result["diff"] = {"before_header": path, "after_header": path,
                              "prepared": prepared(lines, 0, 0, len(differ))}
        if differ and not check_mode:
            pinned.write_packed([struct.pack("I", offset + i) for i in differ],
                                b"".join(raw[i * size:(i + 1) * size] for i in differ))
            if _read_range(pinned, offset, count) != raw:
                raise DatapathError("%s does not hold the packed values after writing them; another writer "
                                    "changed it at the same time, run again." % path)
        return result
