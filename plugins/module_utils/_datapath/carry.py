"""Make before break: the maps a new program version creates anew, filled before that version goes live.

When a new version changes a map's definition (type, key or value size,
flags, max_entries) the kernel cannot reuse the pinned map, so the new one
starts empty. An empty deny list is a fail-open window, so before the new
version is swapped in each such map is filled:

  * from the entries the same call asks for (typed, as bpf_map_entry takes
    them), or the raw contents a checkpoint kept (rollback), when given;
  * else copied from the map the live version uses, each entry converted
    where the layouts allow it (convert_values): a per-CPU value becomes a
    plain one by adding up its 8-byte lanes over the CPUs (counters keep
    their totals), a plain value lands on the first CPU of a per-CPU one, and
    a value that grew or shrank keeps its leading bytes.

Nothing here touches the live program or its maps, except that the entries
asked for are covered by the live list indexes before they are written
(covering only adds, see indexes/); any failure leaves the old version
attached and its maps as they were.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import struct

from . import denyhits, hooks, indexes, mapsync
from .errors import DatapathError
from .kernel import maps
from .kernel import netns as netns_

# maps whose elements user space cannot read back or write as data: never carried (a program array is the chain's)
NOT_CARRIED = {3, 4, maps.XSKMAP, maps.RINGBUF}  # PROG_ARRAY, PERF_EVENT_ARRAY, XSKMAP, RINGBUF
CACHES = {maps.LRU_HASH, maps.LRU_PERCPU_HASH}  # state a program rebuilds: may start empty when not convertible


# pure: how the entries of one map become entries of another ---------------------------------------------
class Layout:
    """What conversion needs of a map: type, key and value sizes, CPUs of a per-CPU value, max_entries."""

    def __init__(self, map_type: int, key_size: int, value_size: int, max_entries: int, ncpu: int = 1):
        self.type, self.key_size, self.value_size, self.max_entries = map_type, key_size, value_size, max_entries
        self.percpu = map_type in maps.PERCPU
        self.ncpu = ncpu if self.percpu else 1
        self.stride = (value_size + 7) // 8 * 8 if self.percpu else value_size
        self.slot_size = self.stride * self.ncpu

    @classmethod
    def of(cls, m) -> Layout:
        return cls(m.type, m.key_size, m.value_size, m.max_entries, m.ncpu)


def why_not(old: Layout, new: Layout) -> str | None:
    """None when entries of old can become entries of new, else the reason in people's words."""
    if old.type in NOT_CARRIED or new.type in NOT_CARRIED:
        return None if old.type == new.type else "its type changed"
    if old.key_size != new.key_size:
        return "its key changed from %d to %d bytes" % (old.key_size, new.key_size)
    if (old.type == maps.LPM_TRIE) != (new.type == maps.LPM_TRIE):
        return "it changed between a prefix trie and another type, whose keys mean different things"
    if (old.type in maps.ARRAYS) != (new.type in maps.ARRAYS):
        return "it changed between an array and a hash, whose keys mean different things"
    return None


def _resize(value: bytes, size: int) -> bytes:
    return value[:size] if len(value) >= size else value + bytes(size - len(value))


def convert_values(old: Layout, new: Layout, values: bytes, count: int) -> bytes:
    """count values of old (back to back, as a dump gives them) as values of new, back to back."""
    if (old.percpu, old.value_size, old.slot_size) == (new.percpu, new.value_size, new.slot_size):
        return values
    out = []
    for i in range(count):
        raw = values[i * old.slot_size:(i + 1) * old.slot_size]
        if old.percpu:
            copies = [raw[c * old.stride:c * old.stride + old.value_size] for c in range(old.ncpu)]
            if old.value_size % 8 == 0:  # counters: add up every 8-byte lane over the CPUs
                lanes = old.value_size // 8
                sums = [0] * lanes
                for copy in copies:
                    for lane, v in enumerate(struct.unpack("<%dQ" % lanes, copy)):
                        sums[lane] = (sums[lane] + v) & 0xFFFFFFFFFFFFFFFF
                value = struct.pack("<%dQ" % lanes, *sums)
            else:
                value = copies[0]
        else:
            value = raw[:old.value_size]
        value = _resize(value, new.value_size)
        if new.percpu:
            out.append(value.ljust(new.stride, b"\0") + bytes(new.stride * (new.ncpu - 1)))
        else:
            out.append(value)
    return b"".join(out)


def carried(old: Layout, new: Layout, keys: list, values: bytes) -> tuple[list, bytes]:
    """(keys, values) of old's dump as new holds them: an array's indexes past new's end are dropped when zero
    (a capacity that no longer holds a set index raises in check_fits); a plain array's all-zero entries are
    left out (they are there already)."""
    converted = convert_values(old, new, values, len(keys))
    if new.type not in maps.ARRAYS:
        return keys, converted
    size = new.slot_size
    kept_keys, kept_values = [], []
    for i, key in enumerate(keys):
        value = converted[i * size:(i + 1) * size]
        if any(value):
            kept_keys.append(key)
            kept_values.append(value)
    return kept_keys, b"".join(kept_values)


def check_fits(name: str, new: Layout, keys: list, where: str) -> None:
    """Refuse entries the new map cannot hold, with one sentence."""
    if new.type in NOT_CARRIED:
        return
    if new.type in maps.ARRAYS:
        past = [k for k in keys if struct.unpack("<I", k[:4])[0] >= new.max_entries]
        if past:
            raise DatapathError("map %s: %d set entries lie past its new max_entries %d (%s); the old version "
                                "stays attached, give a larger size." % (name, len(past), new.max_entries, where))
        return
    if len(keys) > new.max_entries:
        raise DatapathError("map %s would hold %d entries (%s) but its new max_entries is %d; the old version "
                            "stays attached, give a capacity of at least %d." % (name, len(keys), where,
                                                                                 new.max_entries, len(keys)))


# carrying it out -------------------------------------------------------------------------------------------
def plan(loaded, pin_dir: str, entries: dict | None = None, contents: dict | None = None) -> dict:
    """{map name: (source, count)} for each map the new version creates anew (and, with entries, each new map):
    source is "entries", "checkpoint", "previous" (copied from the live map) or "empty". Reads the live maps,
    changes nothing; raises when a map cannot be filled or would not fit."""
    out = {}
    for name, source, count, _layouts in _sources(loaded, pin_dir, entries or {}, contents or {}):
        out[name] = {"from": source, "entries": count}
    return out


def _sources(loaded, pin_dir, entries, contents):
    loaded = loaded.fillable
    if loaded is None:
        return
    for name in sorted(loaded.map_names, key=lambda n: (n in indexes.own_maps(), n)):
        path = os.path.join(pin_dir, "maps", name)
        new_map = maps.PinnedMap(path, fd=loaded.obj.map_fd(name))
        try:
            new = Layout.of(new_map)
        finally:
            new_map.close()
        fresh = name not in loaded.recreated and name not in loaded.reused  # not pinned before
        if name in entries and (fresh or name in loaded.recreated):
            yield name, "entries", len(mapsync.wanted_of(entries[name])), (None, new)
            continue
        if name in contents and (fresh or name in loaded.recreated) and contents[name].get("key_size") == \
                new.key_size and new.type not in NOT_CARRIED:
            keys = [bytes.fromhex(k) for k, _v in contents[name]["entries"]]
            check_fits(name, new, keys, "from the checkpoint")
            yield name, "checkpoint", len(keys), (None, new)
            continue
        if name not in loaded.recreated:
            continue
        with maps.PinnedMap(path) as old_map:
            old = Layout.of(old_map)
            if new.type in NOT_CARRIED or old.type in NOT_CARRIED:
                yield name, "empty", 0, (old, new)
                continue
            keys = old_map.dump_keys()
            reason = why_not(old, new)
            if reason and keys and new.type not in CACHES:
                raise DatapathError(
                    "map %s of %s changes its definition and %s, so its %d entries cannot be carried over to the "
                    "new version; the old version stays attached: give the map's entries in the same call, or "
                    "remove the program first." % (name, os.path.basename(pin_dir.rstrip("/")), reason, len(keys)))
            if reason:
                yield name, "empty", 0, (old, new)
                continue
            if new.type in maps.ARRAYS:
                keys = [k for k, v in zip(keys, maps.records(old_map.dump_packed()[1], old.slot_size)) if any(v)]
            check_fits(name, new, keys, "copied from the live version")
            yield name, "previous", len(keys), (old, new)


def fill(loaded, pin_dir: str, entries: dict | None = None, contents: dict | None = None) -> dict:
    """Fill the maps plan() names, before the new version goes live; returns plan()'s answer."""
    entries, contents = entries or {}, contents or {}
    out = {}
    for name, source, count, (old, new) in list(_sources(loaded, pin_dir, entries, contents)):
        path = os.path.join(pin_dir, "maps", name)
        out[name] = {"from": source, "entries": count}
        with maps.PinnedMap(path, fd=loaded.fillable.obj.map_fd(name)) as target:
            if source == "entries":
                spec = entries[name]
                wanted = mapsync.wanted_of(spec)
                try:
                    change, _result = mapsync._plan(target, wanted, "present", True, spec.get("key_type"),
                                                    spec.get("value_type"), False)
                    change.apply()
                except DatapathError as exc:
                    raise DatapathError("map %s: %s" % (name, exc.message)) from None
                out[name]["entries"] = len(change.add)
            elif source == "checkpoint":
                want = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in contents[name]["entries"]]
                index = indexes.for_list(path)
                if index:
                    index.cover(name, [k for k, _v in want])
                zero = denyhits.holds_slots(name, loaded.fillable.map_names)
                _write(target, name, [k for k, _v in want],
                       b"".join(v if len(v) == target.slot_size and not zero else bytes(target.slot_size)
                                for _k, v in want))
            elif source == "previous":
                with maps.PinnedMap(path) as live:
                    keys, values = live.dump_packed()
                keys, values = carried(old, Layout.of(target), keys, values)
                if denyhits.holds_slots(name, loaded.fillable.map_names):
                    values = bytes(len(values))  # hit counts start again: a slot names the old pool's counter
                check_fits(name, new, keys, "copied from the live version")
                _write(target, name, keys, values)
                out[name]["entries"] = len(keys)
    return out


def _write(target, name, keys, values) -> None:
    try:
        target.write_packed(keys, values)
    except OSError as exc:
        raise DatapathError("the kernel refused to fill the new map %s (%s, %d entries); the old version stays "
                            "attached and its maps unchanged." % (name, os.strerror(exc.errno), len(keys))) from None


def filler(entries: dict | None = None, contents: dict | None = None, netns: str | None = None):
    """The fill step hooks.deploy takes: entries {map: {entries, key_type, value_type}} asked for in the same
    call, contents {map: a checkpoint's content of it}; written from inside the program's network namespace
    (a DEVMAP's interface indexes mean interfaces there)."""

    def step(loaded, pin_dir: str, apply: bool) -> dict:
        if not apply:
            return plan(loaded, pin_dir, entries, contents)
        with netns_.entered(netns):
            return fill(loaded, pin_dir, entries, contents)
    return step


def deploy(hook, check_mode: bool = False, *, entries: dict | None = None, contents: dict | None = None) -> dict:
    """hooks.deploy with make before break: every map the new version creates is filled before it goes live."""
    return hooks.deploy(hook, check_mode, fill=filler(entries, contents, hook.req.netns))
