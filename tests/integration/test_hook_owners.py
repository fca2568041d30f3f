# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Other owners of the XDP hook: a bpf_link (libbpf's bpf_program__attach_xdp, as xdp-loader, Cilium and bpfman
attach), and libxdp's dispatcher attached over netlink. datapath_info names them; a deploy fails before any change
with one sentence naming the owner, and force takes neither away."""

import os
import socket

import pytest
from conftest import TEST_BPF
from netlab import netns, run

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import facts, info
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.bpf_object import BpfObject


class XdpLink:
    """A program attached to the dut interface through a bpf_link, made by libbpf as another tool would."""

    def __init__(self, dut, obj_path):
        self.obj = BpfObject(obj_path)
        self.obj.select(None, libbpf.PROG_TYPE_XDP)
        self.obj.load()
        with netns(dut.dut):  # the ifindex is read in the caller's namespace
            index = socket.if_nametoindex(dut.ifname)
            self.link = libbpf.lib().bpf_program__attach_xdp(self.obj.prog, index)
        assert self.link, "bpf_program__attach_xdp failed"
        self.prog_id = libbpf.prog_info(self.obj.prog_fd)["id"]

    def close(self):
        if self.link:
            libbpf.lib().bpf_link__destroy(self.link)
            self.link = None
        self.obj.close()


@pytest.fixture
def linked(dut, objects):
    held = XdpLink(dut, objects["blocklist"])
    try:
        yield held
    finally:
        held.close()


def deploy_fails(dut, **kw):
    with pytest.raises(DatapathError) as err:
        dut.deploy("dp", config={"drop_port": 7000}, **kw)
    return err.value.message


def owner_of(dut):
    with netns(dut.dut):
        index = socket.if_nametoindex(dut.ifname)
        return info.interface_info(dut.ifname, index, dut.bpffs)["xdp_owner"], facts.facts(dut.bpffs)


def test_a_link_held_hook_is_named_and_never_taken(dut, linked):
    owner, host_facts = owner_of(dut)
    assert owner["attached_by"] == "bpf_link" and owner["program"] == "xdp_blocklist"
    assert owner["prog_id"] == linked.prog_id and owner["link_id"] > 0
    assert host_facts["interfaces"][dut.ifname]["xdp_owner"]["link_id"] == owner["link_id"]  # what the preflight reads
    for kw in ({}, {"check_mode": True}, {"force": True}):
        msg = deploy_fails(dut, **kw)
        assert "'xdp_blocklist'" in msg and "bpf_link %d" % owner["link_id"] in msg, msg
        assert "bpftool link detach id %d" % owner["link_id"] in msg and "force never takes a link away" in msg
        assert msg.count("; ") == 1 and msg.endswith(".")
        assert "xdp_blocklist" in dut.xdp_prog()
    with pytest.raises(DatapathError):
        dut.remove("dp", force=True)
    assert "xdp_blocklist" in dut.xdp_prog()
    assert not os.path.exists(dut.pin_root)  # nothing of ours was left behind
    linked.close()  # the owner lets go: the deploy goes through
    assert dut.deploy("dp", config={"drop_port": 7000})["changed"]
    assert dut.udp(7000) == 0 and dut.udp(7001) == 20
    assert owner_of(dut)[0] is None


def test_libxdp_dispatcher_over_netlink_is_named_and_kept_under_force(dut, objects, tmp_path):
    src = tmp_path / "xdp_dispatcher.bpf.c"
    with open(os.path.join(TEST_BPF, "drop_all.bpf.c")) as fh:
        text = fh.read()
    assert "int drop_all(" in text
    src.write_text(text.replace("int drop_all(", "int xdp_dispatcher(").replace("return XDP_DROP", "return XDP_PASS"))
    obj = objects["build"](str(src))
    run(["ip", "-n", dut.dut, "link", "set", "dev", dut.ifname, "xdpgeneric", "obj", obj, "sec", "xdp"])
    owner, _facts = owner_of(dut)
    assert owner["attached_by"] == "netlink" and owner["tool"] == "libxdp" and owner["link_id"] is None
    for kw in ({}, {"force": True}):
        msg = deploy_fails(dut, **kw)
        assert "libxdp's dispatcher" in msg and "xdp-loader unload %s --all" % dut.ifname in msg, msg
    assert "xdp_dispatcher" in dut.xdp_prog()


def test_a_plain_netlink_program_is_named_and_force_replaces_it(dut, objects):
    run(["ip", "-n", dut.dut, "link", "set", "dev", dut.ifname, "xdpgeneric", "obj", objects["blocklist"],
         "sec", "xdp"])
    owner, _facts = owner_of(dut)
    assert owner["attached_by"] == "netlink" and owner["tool"] is None and owner["program"] == "xdp_blocklist"
    msg = deploy_fails(dut)
    assert "over netlink" in msg and "set force: true to replace it" in msg
    assert dut.deploy("dp", config={"drop_port": 7000}, force=True)["changed"]
    assert "wirespeed_root" in dut.xdp_prog()
