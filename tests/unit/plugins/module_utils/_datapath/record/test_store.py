# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import json
import os

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.record import Record
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.store import StateStore


def rec(sha):
    return Record(hook="xdp", interface="eth0", name="fw", object_sha256=sha, attach={"mode": "native"})


def test_record_keeps_the_version_before(tmp_path):
    store = StateStore(str(tmp_path))
    assert store.record("eth0", "fw", rec("a")) is None
    assert store.record("eth0", "fw", rec("b")).object_sha256 == "a"
    entry = store.load()["interfaces"]["eth0"]["fw"]
    assert entry["current"]["object_sha256"] == "b" and entry["previous"]["object_sha256"] == "a"
    store.record("eth0", "fw", None)
    entry = store.load()["interfaces"]["eth0"]["fw"]
    assert entry["current"] is None and entry["previous"]["object_sha256"] == "b"


def test_interrupted_write_leaves_the_old_record(tmp_path, monkeypatch):
    store = StateStore(str(tmp_path))
    store.record("eth0", "fw", rec("a"))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.record("eth0", "fw", rec("b"))
    monkeypatch.undo()
    assert store.current("eth0", "fw").object_sha256 == "a"
    assert [n for n in os.listdir(str(tmp_path)) if n.endswith(".tmp")] == []


def test_corrupt_file_is_named(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(DatapathError, match=r"state\.json is not valid JSON"):
        StateStore(str(tmp_path)).load()


def test_objects_are_stored_by_hash(tmp_path):
    obj = tmp_path / "p.o"
    obj.write_bytes(b"\x7fELF")
    store = StateStore(str(tmp_path / "state"))
    kept = store.keep_object(str(obj), "abc")
    with open(kept, "rb") as fh:
        assert kept.endswith("objects/abc.o") and fh.read() == b"\x7fELF"
    assert json.loads(json.dumps(store.load())) == {"format": 2, "interfaces": {}}
