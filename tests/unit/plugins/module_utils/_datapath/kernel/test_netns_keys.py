# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interfaces in other network namespaces: keys, pin folders, records and checkpoint keys stay apart."""
import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import checkpoint, hooks
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs, netns
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.record import Record
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.store import StateStore


def test_keys_of_the_same_interface_in_three_namespaces_differ():
    keys = {netns.key("eth0", None), netns.key("eth0", "a"), netns.key("eth0", "b")}
    assert keys == {"eth0", "a:eth0", "b:eth0"}
    assert netns.key("eth0", "/run/netns/a") == "a:eth0"  # a name and its path are one namespace
    assert netns.key("eth0", "/proc/1234/ns/net") == "proc_1234_ns_net:eth0"
    assert netns.key("eth0", "blue.1") == "blue_1:eth0"  # bpffs takes no dots
    assert netns.split("a:eth0") == ("a", "eth0")
    assert netns.split("eth0") == (None, "eth0")


def test_bad_namespace_names_are_one_sentence(tmp_path):
    with pytest.raises(DatapathError, match="neither a name"):
        netns.path("a/b")
    with pytest.raises(DatapathError, match=r"network namespace .nope. does not exist on this host"):
        netns.check("nope")


def test_pin_folders_of_keys():
    assert bpffs.interface_dir("/sys/fs/bpf", "a:eth0") == "/sys/fs/bpf/wirespeed/a:eth0"
    with pytest.raises(DatapathError):
        bpffs.interface_dir("/sys/fs/bpf", "a.b:eth0")
    with pytest.raises(DatapathError):
        bpffs.interface_dir("/sys/fs/bpf", "a:eth/0")


def test_requests_records_and_checkpoints_keep_the_namespace(tmp_path):
    state = str(tmp_path)
    host = hooks.Request("eth0", "fw", state_dir=state)
    inside = hooks.Request("eth0", "fw", state_dir=state, netns="a")
    assert (host.key, inside.key) == ("eth0", "a:eth0")
    assert host.pin_dir != inside.pin_dir
    store = StateStore(state)
    for req in (host, inside):
        record = Record("xdp", "eth0", "fw", "ab" * 32, pin_path=req.pin_dir, netns=req.netns)
        store.record(req.key, req.name, record)
    assert store.current("a:eth0", "fw").netns == "a"
    assert store.current("eth0", "fw").netns is None
    snap = checkpoint.take(state)
    assert [p["interface"] for p in snap["programs"]] == ["a:eth0", "eth0"]
    # identities differ, and a host record's identity is what it was before namespaces existed
    a, h = (checkpoint.record_of(p) for p in snap["programs"])
    assert a.identity() != h.identity()
    assert "netns" not in h.view() and a.view()["netns"] == "a"
    # rollback to nothing removes both, each through a request in its own namespace
    steps = checkpoint.plan_rollback(snap, {"programs": []})
    assert [(s[0], s[1]["interface"]) for s in steps] == [("remove", "a:eth0"), ("remove", "eth0")]
    again = hooks.hook_for("xdp").from_record(a, "/sys/fs/bpf", state)
    assert (again.req.netns, again.req.key) == ("a", "a:eth0")


def test_tc_refuses_a_namespace():
    with pytest.raises(DatapathError, match="netns 'a'"):
        hooks.hook_for("tc")(hooks.Request("eth0", "x", attach={"direction": "ingress"}, netns="a"))
