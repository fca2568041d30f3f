"""The ListIndex interface: a derived map a program keeps in front of some of its lists, and how it is kept true."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ListIndex:
    """An index over some of one program's maps (its lists), held in maps of its own.

    A program declares the index by having its maps: MARKER is the map whose presence in the program's maps
    folder says "these lists are indexed by this index". The index's own maps (MAPS) are derived from the
    lists, so checkpoints leave them out and rebuild them from the lists. The engine keeps it true by the one
    rule every index follows: cover() the keys about to be written to a list before the write, refresh() after
    the lists changed (a no-op sync too, so a drifted index is put right by the next run).
    """

    NAME = ""  # the key datapath_info shows its state under
    MARKER = ""  # the map that declares the index
    MAPS: tuple[str, ...] = ()  # the index's own maps: derived, never checkpointed
    LISTS: tuple[str, ...] = ()  # the maps it indexes

    def __init__(self, mdir: str):
        self.mdir = mdir

    def cover(self, list_name: str, keys) -> None:
        """Make the index cover `keys`, which are about to be written to list `list_name`."""
        raise NotImplementedError

    def refresh(self, known: dict | None = None) -> dict:
        """Make the index exactly what the lists need now; known: {list name: its keys} a caller has in hand.
        Returns state()."""
        raise NotImplementedError

    def state(self) -> dict:
        """What datapath_info shows of the index, without changing anything."""
        raise NotImplementedError
