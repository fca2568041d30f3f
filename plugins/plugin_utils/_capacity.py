# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""How big a role's map is: from the entries it is given (with headroom) or from an explicit capacity."""

from __future__ import annotations

HEADROOM = 1.25  # room for a feed to grow between runs before its map is made anew


class CapacityError(ValueError):
    """One sentence naming the variable, the count and the capacity."""


def from_entries(count: int, floor: int) -> int:
    """The smallest power of two that holds count entries with 25% to spare, and never below floor (the size
    compiled into the program, so a list that fits it keeps its map as it is)."""
    need = -(-int(count) * 5 // 4)  # ceil(count * 1.25) in integers
    size = 1
    while size < need:
        size <<= 1
    return max(size, int(floor))


def capacity(count: int, floor: int, explicit: int = 0, variable: str = "capacity", what: str = "entries") -> int:
    """explicit when set (> 0), refusing more entries than it holds; else from_entries(count, floor)."""
    count, explicit = int(count), int(explicit or 0)
    if explicit < 0:
        raise CapacityError("%s is %d; give a number of entries, or 0 to size the maps from the lists."
                            % (variable, explicit))
    if not explicit:
        return from_entries(count, floor)
    if count > explicit:
        raise CapacityError("the lists give %d %s, more than %s %d; raise %s (or set it to 0 to size the maps from "
                            "the lists), or send fewer entries." % (count, what, variable, explicit, variable))
    return explicit
