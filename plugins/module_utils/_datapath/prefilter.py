"""The firewall's IPv4 prefilter: a derived bitmap, one bit per /24, in front of its deny hash and CIDR trie.

A set bit says "some entry of deny_v4 or deny_net_v4 may cover an address of this /24"; a clear bit lets a
packet skip both lookups (bench/programs.py: the clean path stays flat with 100k addresses and 10k CIDRs).
The index is a superset and can only cost time, never let a listed source through, because:

  * the program uses it only while prefilter_state holds a generation (non-zero); a firewall just loaded, or an
    index the engine never built, has 0 there and every packet takes the full lookups;
  * entries are covered BEFORE they are written to the lists (cover(), called by mapsync before its writes);
  * bits are cleared only by refresh(), after the lists changed, for /24s no entry of the lists covers any more
    (each bit goes from its old value to its new one, and the new set of needed bits is a subset of the old
    set of bits, so a reader sees a superset at every moment);
  * refresh() runs after every sync of either list (a no-op sync too), verifies that every entry's bits are
    set, and only then writes a new generation; checkpoint restores (which write lists directly) call it.

The bitmap is a BPF_F_MMAPABLE array read and written through mmap: no syscall per word.
datapath_info shows the state (generation, /24s marked, whether the lists are covered).
"""

# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import mmap
import os
import struct

from .kernel.maps import PinnedMap

PREFIX = "prefilter_"  # the index's maps: derived, left out of checkpoints
INDEX, STATE = "prefilter_v4", "prefilter_state"
LISTS = ("deny_v4", "deny_net_v4")
SLOTS = 1 << 24  # IPv4 /24s
INDEX_BYTES = SLOTS // 8


def for_map(path: str) -> Prefilter | None:
    """The prefilter of the program whose map is at `path`, when that map is one of the lists it indexes."""
    mdir, name = os.path.split(path)
    if name not in LISTS or not os.path.exists(os.path.join(mdir, INDEX)):
        return None
    return Prefilter(mdir)


def _mark_range(bits: bytearray, first: int, count: int) -> None:
    """Set `count` bits from bit `first` (whole bytes at once where the range covers them)."""
    end = first + count
    while first < end and first & 7:
        bits[first >> 3] |= 1 << (first & 7)
        first += 1
    if end - first >= 8:
        bits[first >> 3:end >> 3] = b"\xff" * ((end >> 3) - (first >> 3))
        first = end & ~7
    while first < end:
        bits[first >> 3] |= 1 << (first & 7)
        first += 1


def needed(addr_keys, cidr_keys) -> bytearray:
    """The bitmap the lists need: bit n (little-endian bit order in each byte) is the /24 n of IPv4 space."""
    bits = bytearray(INDEX_BYTES)
    for slot in {int.from_bytes(k[:3], "big") for k in addr_keys}:
        bits[slot >> 3] |= 1 << (slot & 7)
    for key in cidr_keys:
        plen = min(struct.unpack_from("<I", key)[0], 32)
        slot = int.from_bytes(key[4:7], "big")
        if plen >= 24:
            bits[slot >> 3] |= 1 << (slot & 7)
        else:
            span = 1 << (24 - plen)
            _mark_range(bits, slot & ~(span - 1), span)
    return bits


def missing(have: bytes, want: bytes) -> int:
    """How many bytes of `want` have a bit that `have` lacks (0: have covers want)."""
    if have == want:
        return 0
    h, w = int.from_bytes(have, "little"), int.from_bytes(want, "little")
    lacking = w & ~h
    return 0 if not lacking else sum(1 for b in lacking.to_bytes(len(want), "little") if b)


class Prefilter:
    """The index of one firewall program (its maps folder)."""

    def __init__(self, mdir: str):
        self.mdir = mdir

    def _lists(self):
        keys = []
        for name in LISTS:
            with PinnedMap(os.path.join(self.mdir, name)) as m:
                keys.append(list(m.dump()))
        return keys

    def _with_index(self, fn):
        with PinnedMap(os.path.join(self.mdir, INDEX)) as m:
            size = m.max_entries * m.value_size
            mm = mmap.mmap(m.fd, (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE)
            try:
                return fn(mm, size)
            finally:
                mm.close()

    def generation(self) -> int:
        with PinnedMap(os.path.join(self.mdir, STATE)) as m:
            return struct.unpack("<Q", m.dump()[b"\0\0\0\0"][:8])[0]

    def _set_generation(self, value: int) -> None:
        with PinnedMap(os.path.join(self.mdir, STATE)) as m:
            m.write([(b"\0\0\0\0", struct.pack("<Q", value))])

    def cover(self, map_name: str, keys) -> None:
        """Set the bits of entries about to be written to `map_name` (before the write)."""
        keys = list(keys)
        if not keys:
            return
        want = needed(keys, []) if map_name == "deny_v4" else needed([], keys)

        def merge(mm, size):
            have = int.from_bytes(mm[:size], "little")
            add = int.from_bytes(want, "little") & ~have
            if not add:
                return
            raw = add.to_bytes(size, "little")
            view = memoryview(mm).cast("Q")
            try:
                for word in range(0, size, 8):
                    if raw[word:word + 8] != b"\0" * 8:  # only words with a new bit: others stay untouched
                        view[word >> 3] |= int.from_bytes(raw[word:word + 8], "little")
            finally:
                view.release()
        self._with_index(merge)

    def refresh(self) -> dict:
        """Make the index exactly what the lists need, verify it covers them and validate it (a new generation).
        Returns the state datapath_info shows."""
        addrs, cidrs = self._lists()
        want = needed(addrs, cidrs)

        def rewrite(mm, size):
            if mm[:size] != want:
                view = memoryview(mm).cast("Q")
                try:
                    new = memoryview(want).cast("Q")
                    for word in range(size >> 3):  # word by word: each store is whole, every moment a superset
                        if view[word] != new[word]:
                            view[word] = new[word]
                finally:
                    view.release()
            return missing(mm[:size], want)
        lacking = self._with_index(rewrite)
        if lacking:  # cannot happen short of a kernel fault: leave the index unused rather than trust it
            self._set_generation(0)
            return self.state(addrs, cidrs)
        self._set_generation(self.generation() + 1)
        return {"generation": self.generation(), "covered": True, "slots": _popcount(want)}

    def state(self, addrs=None, cidrs=None) -> dict:
        """{generation (0: not in use, full lookups), covered (every list entry's /24 is marked), slots (/24s
        marked)} without changing anything."""
        if addrs is None:
            addrs, cidrs = self._lists()
        want = needed(addrs, cidrs)
        have = self._with_index(lambda mm, size: bytes(mm[:size]))
        return {"generation": self.generation(), "covered": missing(have, want) == 0, "slots": _popcount(have)}


def _popcount(bits: bytes) -> int:
    return bin(int.from_bytes(bits, "little")).count("1")
