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

The engine reaches it only through the ListIndex interface (indexes/__init__.py): a firewall declares it by
having the map prefilter_v4.

The bitmap is a BPF_F_MMAPABLE array read and written through mmap: no syscall per word.
datapath_info shows the state (generation, /24s marked, whether the lists are covered).
"""

# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import itertools
import mmap
import operator
import os
import struct

from ..kernel.maps import PinnedMap
from .base import ListIndex

INDEX, STATE = "prefilter_v4", "prefilter_state"
LISTS = ("deny_v4", "deny_net_v4")
SLOTS = 1 << 24  # IPv4 /24s
INDEX_BYTES = SLOTS // 8
WORDWISE = 4096  # entries covered word by word at most; more: one OR of the whole index
BLOCK = 256  # bytes of the index compared at once before a word-by-word rewrite


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


def _slots(addr_keys, cidr_keys, shift=8):
    """(the set of /24s (/(32 - shift)s) of the addresses and of the networks of /24 or longer, [(first /24,
    count)] of the wider networks): every key cut in one C call, one set built over them."""
    count = len(addr_keys)
    bits = 32 - shift
    slots = set(map(operator.rshift, struct.unpack(">%dI" % count, b"".join(addr_keys)),
                    itertools.repeat(shift, count))) if count else set()
    ranges = []
    if cidr_keys:
        count = len(cidr_keys)
        raw = b"".join(cidr_keys)  # {u32 prefix length, host order; the address, network order}
        plens = struct.unpack("<" + "I4x" * count, raw)
        nets = struct.unpack(">" + "4xI" * count, raw)
        for plen, net in zip(plens, nets):
            if plen >= bits:
                slots.add(net >> shift)
            else:
                span = 1 << (bits - plen)
                ranges.append((net >> shift & ~(span - 1), span))
    return slots, ranges


def needed(addr_keys, cidr_keys, shift=8) -> bytearray:
    """The bitmap the lists need: bit n (little-endian bit order in each byte) is the /24 (/(32 - shift)) n of
    IPv4 space."""
    bits = bytearray((1 << (32 - shift)) // 8)
    slots, ranges = _slots(addr_keys, cidr_keys, shift)
    for slot in slots:
        bits[slot >> 3] |= 1 << (slot & 7)
    for first, count in ranges:
        _mark_range(bits, first, count)
    return bits


def word_masks(addr_keys, cidr_keys, shift=8) -> dict[int, int]:
    """{u64 word of the index: the bits the entries need in it}, for the words they touch only."""
    words = {}
    slots, ranges = _slots(addr_keys, cidr_keys, shift)
    for first, count in ranges:
        if count < 64:
            slots.update(range(first, first + count))
        else:  # a network of /18 or wider: whole words (aligned, as the network is)
            words.update(dict.fromkeys(range(first >> 6, (first + count) >> 6), (1 << 64) - 1))
    for slot in slots:
        words[slot >> 6] = words.get(slot >> 6, 0) | 1 << (slot & 63)
    return words


def missing(have: bytes, want: bytes) -> int:
    """How many bytes of `want` have a bit that `have` lacks (0: have covers want)."""
    if have == want:
        return 0
    h, w = int.from_bytes(have, "little"), int.from_bytes(want, "little")
    lacking = w & ~h
    return 0 if not lacking else sum(1 for b in lacking.to_bytes(len(want), "little") if b)


class Prefilter(ListIndex):
    """The deny index of one firewall program (its maps folder): one bit per /24 over deny_v4 and deny_net_v4."""

    NAME = "prefilter"
    INDEX, STATE, SHIFT = INDEX, STATE, 8
    MARKER = INDEX
    MAPS = (INDEX, STATE)
    LISTS = LISTS
    ADDR_LIST = "deny_v4"  # the list of addresses; the others hold CIDRs

    def _lists(self, known=None):
        """The keys of deny_v4 and deny_net_v4: those a sync has in hand (known: {list name: keys}), the others
        read from the kernel."""
        known = known or {}
        keys = []
        for name in self.LISTS:
            if name in known:
                keys.append(known[name])
                continue
            with PinnedMap(os.path.join(self.mdir, name)) as m:
                keys.append(m.dump_keys())
        return keys

    def _split(self, keys):
        """(address keys, CIDR keys) of the lists' keys in LISTS order."""
        addrs, cidrs = [], []
        for name, got in zip(self.LISTS, keys):
            (addrs if name == self.ADDR_LIST else cidrs).extend(got)
        return addrs, cidrs

    def _with_index(self, fn):
        with PinnedMap(os.path.join(self.mdir, self.INDEX)) as m:
            size = m.max_entries * m.value_size
            mm = mmap.mmap(m.fd, (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE)
            try:
                return fn(mm, size)
            finally:
                mm.close()

    def generation(self) -> int:
        with PinnedMap(os.path.join(self.mdir, self.STATE)) as m:
            return struct.unpack("<Q", m.dump()[b"\0\0\0\0"][:8])[0]

    def _set_generation(self, value: int) -> None:
        with PinnedMap(os.path.join(self.mdir, self.STATE)) as m:
            m.write([(b"\0\0\0\0", struct.pack("<Q", value))])

    def cover(self, list_name: str, keys) -> None:
        """Set the bits of entries about to be written to `list_name` (before the write). A few entries: only the
        words they touch, each with one whole u64 store that only adds bits; many (a list loaded at once): the
        index OR-ed with their bitmap in one copy, where every byte goes from its old value to old | new, so a
        reader sees a superset of the old index at every moment either way."""
        addr_keys, cidr_keys = (keys, []) if list_name == self.ADDR_LIST else ([], keys)
        if not keys:
            return
        if len(keys) > WORDWISE:
            want = int.from_bytes(needed(addr_keys, cidr_keys, self.SHIFT), "little")

            def merge_all(mm, size):
                have = int.from_bytes(mm[:size], "little")
                if want & ~have:
                    mm[:size] = (have | want).to_bytes(size, "little")
            self._with_index(merge_all)
            return
        words = word_masks(addr_keys, cidr_keys, self.SHIFT)

        def merge(mm, _size):
            view = memoryview(mm).cast("Q")
            try:
                for word, mask in words.items():
                    if view[word] & mask != mask:
                        view[word] |= mask
            finally:
                view.release()
        self._with_index(merge)

    def refresh(self, known: dict | None = None) -> dict:
        """Make the index exactly what the lists need, verify it covers them and validate it (a new generation).
        known: {list name: its keys} a sync has in hand (that list is not read again). Returns the state
        datapath_info shows."""
        addrs, cidrs = self._split(self._lists(known))
        want = needed(addrs, cidrs, self.SHIFT)

        def rewrite(mm, size):
            if mm[:size] != want:
                view = memoryview(mm).cast("Q")
                try:
                    new = memoryview(want).cast("Q")
                    for start in range(0, size, BLOCK):  # blocks that differ, then word by word in them: each
                        if mm[start:start + BLOCK] != want[start:start + BLOCK]:  # store is whole, every
                            for word in range(start >> 3, (start + BLOCK) >> 3):  # moment a superset
                                if view[word] != new[word]:
                                    view[word] = new[word]
                finally:
                    view.release()
            return missing(mm[:size], want)
        lacking = self._with_index(rewrite)
        if lacking:  # cannot happen short of a kernel fault: leave the index unused rather than trust it
            self._set_generation(0)
            return self.state(addrs, cidrs)
        generation = self.generation() + 1
        self._set_generation(generation)
        return {"generation": generation, "covered": True, "slots": _popcount(want)}

    def state(self, addrs=None, cidrs=None) -> dict:
        """{generation (0: not in use, full lookups), covered (every list entry's /24 is marked), slots (/24s
        marked)} without changing anything."""
        if addrs is None:
            addrs, cidrs = self._split(self._lists())
        want = needed(addrs, cidrs, self.SHIFT)
        have = self._with_index(lambda mm, size: bytes(mm[:size]))
        return {"generation": self.generation(), "covered": missing(have, want) == 0, "slots": _popcount(have)}


class AllowPrefilter(Prefilter):
    """The allow index of a program with an allow list (firewall, ssh_limiter, wireguard_filter; allow.h): one bit
    per IPv4 /16 that some entry of allow_v4 may cover. A clear bit lets a packet about to be dropped skip the
    allow trie; the rules that keep the deny index a superset keep this one too (covered before written, refreshed
    after every sync, unused while its generation is 0), so an allowed source is never dropped for a stale bit."""

    NAME = "allow_prefilter"
    INDEX, STATE, SHIFT = "prefilter_allow_v4", "prefilter_allow_state", 16
    MARKER = INDEX
    MAPS = (INDEX, STATE)
    LISTS = ("allow_v4",)
    ADDR_LIST = None


def _popcount(bits: bytes) -> int:
    number = int.from_bytes(bits, "little")
    return number.bit_count() if hasattr(number, "bit_count") else bin(number).count("1")
