# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Record: migration from what the 0.1.0 engine wrote, round trips, identity."""
import json
import os

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.record import VERSION, Record
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.store import StateStore

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def v1_state():
    with open(os.path.join(FIXTURES, "state-v1.json")) as fh:
        return json.load(fh)


def test_a_v1_xdp_record_migrates():
    raw = v1_state()["interfaces"]["wsd0"]["fw"]["current"]
    r = Record.from_dict(raw, "wsd0", "fw")
    assert (r.hook, r.interface, r.name, r.priority) == ("xdp", "wsd0", "fw", 10)
    assert r.attach == {"mode": "native"}
    assert r.objects == {"root": raw["root_object"]}
    assert r.object == raw["object"] and r.config == raw["config"] and r.prog_id == raw["prog_id"]


def test_a_v1_tc_record_migrates():
    raw = v1_state()["interfaces"]["wsd0"]["mirror"]["current"]
    r = Record.from_dict(raw, "wsd0", "mirror")
    assert r.hook == "tc" and r.attach == {"direction": "ingress", "handle": 1} and r.objects == {}


def test_round_trip_and_version():
    r = Record(hook="tc", interface="e0", name="m", object_sha256="ab", attach={"direction": "egress", "handle": 2})
    data = r.to_dict()
    assert data["version"] == VERSION
    assert Record.from_dict(json.loads(json.dumps(data))) == r


def test_identity_ignores_ids_times_and_source():
    a = Record(hook="xdp", interface="e0", name="f", object_sha256="ab", priority=10, attach={"mode": "native"},
               prog_id=5, tag="t1", src="/a.c", deployed_at="x")
    b = a.stamped(prog_id=9, tag="t1", src="/b.c")
    assert a.identity() == b.identity()
    assert a.identity() != a.stamped(attach={"mode": "generic"}).identity()
    assert a.identity() != a.stamped(config={"x": 1}).identity()


def test_store_reads_a_v1_file_and_writes_v2(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps(v1_state()))
    store = StateStore(str(tmp_path))
    assert [(i, n, r.hook) for i, n, r in store.records()] == [("wsd0", "fw", "xdp"), ("wsd0", "mirror", "tc")]
    assert store.interface_flag("wsd0", "clsact_created")
    old = store.current("wsd0", "fw")
    store.record("wsd0", "fw", old.stamped(priority=20))
    data = json.loads((tmp_path / "state.json").read_text())
    assert data["format"] == 2
    entry = data["interfaces"]["wsd0"]["fw"]
    assert entry["current"]["version"] == VERSION and entry["current"]["priority"] == 20
    assert entry["previous"]["version"] == VERSION and entry["previous"]["attach"] == {"mode": "native"}
    assert store.current("wsd0", "mirror").attach["direction"] == "ingress"  # untouched v1 record still reads
