"""The firewall's deny hit counters: the slot numbers held by deny_v4/deny_v6 resolved to their per-CPU counts.

A deny hash holds, per entry, 0 (no hit yet) or the slot of the per-CPU array deny_hits that counts its hits
(files/bpf/firewall.bpf.c: the slot is taken on the entry's first hit), so that memory per entry does not grow
with the CPU count. Every reader of the counts (datapath_info's top_denied, bpf_map_entry's entries, the metrics
through datapath_info) goes through per_cpu_counts(); a map without a deny_hits beside it (a per-CPU hash of a
firewall built before) reads as before, one u64 per CPU.
"""

# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import struct

from .kernel.maps import HASH, PinnedMap

POOL = "deny_hits"
LIVE = (POOL, "deny_hits_next")  # written by the program on every first hit: left out of checkpoints
SLOT_MAPS = ("deny_v4", "deny_v6")  # the hashes whose values are slots of POOL


def holds_slots(name: str, map_names) -> bool:
    """Whether map `name` of a program whose maps are `map_names` holds counter slots as its values (a deny hash
    beside a deny_hits array): a new map of it starts every entry at 0, no slot, since a slot names a counter of
    the old pool (or, carried from a per-CPU hash of a release before, is no slot at all)."""
    return POOL in map_names and name in SLOT_MAPS


def pool_of(pinned: PinnedMap) -> str | None:
    """The path of the deny_hits array whose slots `pinned`'s values name, or None for any other map."""
    name = os.path.basename(pinned.path)
    if pinned.type != HASH or pinned.value_size != 8 or not name.startswith("deny") or name == POOL:
        return None
    pool = os.path.join(os.path.dirname(pinned.path), POOL)
    return pool if os.path.exists(pool) else None


def per_cpu_counts(pinned: PinnedMap, contents: dict[bytes, bytes]) -> dict[bytes, list[int]] | None:
    """{key: [hits on CPU 0, CPU 1, ...]} of a deny hash's entries (contents: its dump), or None when the map
    does not count through a deny_hits array."""
    pool = pool_of(pinned)
    if pool is None:
        return None
    with PinnedMap(pool) as hits:
        slots = {struct.unpack("<I", k)[0]: v for k, v in hits.dump().items()}
        ncpu, stride = hits.ncpu, hits.stride
    zero = [0] * ncpu
    out = {}
    for key, value in contents.items():
        slot = struct.unpack("<Q", value[:8])[0]
        raw = slots.get(slot) if slot else None
        out[key] = [struct.unpack_from("<Q", raw, i * stride)[0] for i in range(ncpu)] if raw else zero
    return out
