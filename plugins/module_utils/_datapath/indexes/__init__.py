"""Indexes programs keep over their lists, found from the maps a program has; mapsync, checkpoint and info use
only these functions, never an index by name.

Each kind of index is one file here (a ListIndex, base.py) and one entry of KINDS:
    prefilter.py  the firewall's /24 bitmap in front of deny_v4 and deny_net_v4 (Prefilter), and the /16
                  bitmap in front of allow_v4 of every program with an allow list (AllowPrefilter)
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

from .base import ListIndex
from .prefilter import AllowPrefilter, Prefilter

KINDS: tuple[type[ListIndex], ...] = (Prefilter, AllowPrefilter)


def of_program(mdir: str) -> list[ListIndex]:
    """The indexes of the program whose maps are pinned in folder `mdir` (those whose marker map it has)."""
    return [kind(mdir) for kind in KINDS if os.path.exists(os.path.join(mdir, kind.MARKER))]


def for_list(path: str) -> ListIndex | None:
    """The index that covers the map pinned at `path`, if an index of its program lists it."""
    mdir, name = os.path.split(path)
    return next((index for index in of_program(mdir) if name in index.LISTS), None)


def own_maps() -> set[str]:
    """The names every kind of index gives its own maps (derived maps, whichever program has them)."""
    return {name for kind in KINDS for name in kind.MAPS}


def derived(mdir: str) -> set[str]:
    """The names of the maps in `mdir` that are indexes' own (rebuilt from the lists, not kept in checkpoints)."""
    return {name for index in of_program(mdir) for name in index.MAPS}


def refresh(paths, known: dict | None = None) -> None:
    """Refresh (and verify) every index that covers one of the maps at `paths`, once per index. known: {path: the
    keys the map holds}, for maps a sync has in hand (not read again)."""
    known = known or {}
    for mdir in sorted({os.path.dirname(p) for p in paths}):
        names = {os.path.basename(p) for p in paths if os.path.dirname(p) == mdir}
        for index in of_program(mdir):
            if names & set(index.LISTS):
                index.refresh({os.path.basename(p): keys for p, keys in known.items()
                               if os.path.dirname(p) == mdir and os.path.basename(p) in index.LISTS})


def states(mdir: str) -> dict[str, dict]:
    """{index name: its state} of the program whose maps are in `mdir`, for datapath_info."""
    return {index.NAME: index.state() for index in of_program(mdir)}
