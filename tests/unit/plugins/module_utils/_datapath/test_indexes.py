# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""indexes/: a program's index is found from the maps it has, and the engine reaches it only through ListIndex."""

from __future__ import annotations

import os
from typing import ClassVar

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import indexes
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.indexes.base import ListIndex
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.indexes.prefilter import Prefilter


class Recorder(ListIndex):
    NAME, MARKER, MAPS, LISTS = "recorder", "rec_index", ("rec_index", "rec_state"), ("list_a", "list_b")
    calls: ClassVar[list] = []

    def cover(self, list_name, keys):
        self.calls.append(("cover", self.mdir, list_name, list(keys)))

    def refresh(self, known=None):
        self.calls.append(("refresh", self.mdir, known))
        return {}

    def state(self):
        return {"seen": os.path.basename(self.mdir)}


def folder(tmp_path, name, maps):
    mdir = tmp_path / name
    mdir.mkdir()
    for m in maps:
        (mdir / m).write_text("")
    return str(mdir)


def test_a_program_declares_its_index_by_having_the_marker_map(tmp_path, monkeypatch):
    monkeypatch.setattr(indexes, "KINDS", (Prefilter, Recorder))
    indexed = folder(tmp_path, "indexed", ["rec_index", "rec_state", "list_a", "list_b", "other"])
    plain = folder(tmp_path, "plain", ["list_a", "other"])
    assert [type(i) for i in indexes.of_program(indexed)] == [Recorder] and indexes.of_program(plain) == []
    assert isinstance(indexes.for_list(os.path.join(indexed, "list_b")), Recorder)
    assert indexes.for_list(os.path.join(indexed, "other")) is None
    assert indexes.for_list(os.path.join(plain, "list_a")) is None
    assert indexes.derived(indexed) == {"rec_index", "rec_state"} and indexes.derived(plain) == set()
    assert indexes.states(indexed) == {"recorder": {"seen": "indexed"}} and indexes.states(plain) == {}


def test_refresh_runs_once_per_index_with_the_keys_in_hand(tmp_path, monkeypatch):
    monkeypatch.setattr(indexes, "KINDS", (Recorder,))
    monkeypatch.setattr(Recorder, "calls", [])
    indexed = folder(tmp_path, "indexed", ["rec_index", "list_a", "list_b", "other"])
    plain = folder(tmp_path, "plain", ["list_a"])
    a, b, other = (os.path.join(indexed, n) for n in ("list_a", "list_b", "other"))
    indexes.refresh([a, b, other, os.path.join(plain, "list_a")], {a: [b"k"], other: [b"x"]})
    indexes.refresh([other])  # no list of the index among the paths: nothing to refresh
    assert Recorder.calls == [("refresh", indexed, {"list_a": [b"k"]})]


def test_the_firewall_prefilter_is_a_list_index():
    assert issubclass(Prefilter, ListIndex) and Prefilter in indexes.KINDS
    assert Prefilter.MARKER in Prefilter.MAPS and set(Prefilter.LISTS) == {"deny_v4", "deny_net_v4"}
