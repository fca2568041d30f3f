# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback plan as a table: two checkpoints in, the ordered steps out; no root, no kernel."""
import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import checkpoint
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.record import Record

HASH, ARRAY = 1, 2


def prog(name, sha="a", hook="xdp", direction=None, deny=(), ports=None, prio=10, counted=False):
    attach = {"mode": "native"} if hook == "xdp" else {"direction": direction, "handle": 1}
    maps = {"deny": {"type": HASH, "key_size": 4, "value_size": 8,
                     "entries": [[k, "ff" * 8 if counted else "%016x" % i] for i, k in enumerate(deny)]}}
    if ports is not None:
        maps["ports"] = {"type": ARRAY, "key_size": 4, "value_size": 4, "entries": [["00000000", ports]]}
    record = Record(hook=hook, interface="e0", name=name, object_sha256=sha * 12, priority=prio, attach=attach)
    return {"interface": "e0", "name": name, "record": record.to_dict(), "maps": maps}


def snap(*programs):
    return {"programs": list(programs)}


def actions(now, target):
    return [(a, p["name"], d) for a, p, d in checkpoint.plan_rollback(snap(*now), snap(*target))]


@pytest.mark.parametrize("now,target,expected", [
    ([prog("fw")], [prog("fw")], []),
    ([prog("fw", sha="b")], [prog("fw")], [("deploy", "fw", None)]),
    ([prog("fw", deny=["0a000001"])], [prog("fw", deny=["0a000002"])], [("maps", "fw", ["deny +1 -1"])]),
    # hit counters (hash values) are not a change: only keys count for sets
    ([prog("fw", deny=["0a000001"])], [prog("fw", deny=["0a000001"], counted=True)], []),
    ([prog("fw", ports="16000000")], [prog("fw", ports="17000000")], [("maps", "fw", ["ports 1 values"])]),
    # deploy what comes back before removing what goes, so the chain never empties
    ([prog("ssh")], [prog("fw")], [("deploy", "fw", None), ("remove", "ssh", None)]),
    # a TC program that moves from ingress to egress is removed first
    ([prog("m", hook="tc", direction="ingress")], [prog("m", hook="tc", direction="egress")],
     [("remove", "m", None), ("deploy", "m", None)]),
    ([prog("fw")], [], [("remove", "fw", None)]),
])
def test_plan_rollback(now, target, expected):
    assert actions(now, target) == expected


def test_digest_reads_both_record_versions_alike():
    v2 = prog("fw")
    v1 = dict(v2, record={"kind": "xdp", "mode": "native", "object_sha256": "a" * 12, "priority": 10,
                          "config": {}, "program": None, "pin_path": None, "prog_id": 3})
    assert checkpoint.digest([v1]) == checkpoint.digest([v2])
    assert checkpoint.describe(snap(v1)) == ["e0 xdp: fw priority 10, object aaaaaaaaaaaa, 0 map entries"]
