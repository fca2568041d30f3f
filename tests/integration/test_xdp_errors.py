# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every bad input: one sentence naming it, and the previous datapath still filtering."""

import os
import subprocess

import pytest
from conftest import INCLUDE, TEST_BPF
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program import compile as bpfcc


@pytest.fixture
def filtering(dut):
    """A dut whose chain drops UDP to 7000; each test checks it still does after its failure."""
    first = dut.deploy("dp", config={"drop_port": 7000})
    dut.first = first
    assert dut.udp(7000) == 0
    yield dut
    assert dut.udp(7000) == 0, "the previous program stopped filtering"
    assert dut.udp(7001) == 20
    with netns(dut.dut):
        assert "wirespeed_root" in dut.xdp_prog()


def fails(fn, *args, **kw):
    with pytest.raises(DatapathError) as err:
        fn(*args, **kw)
    return err.value


def test_compile_error_shows_clangs_message(filtering, tmp_path):
    err = fails(bpfcc.compile_source, os.path.join(TEST_BPF, "broken_syntax.bpf.c"), [INCLUDE],
                cache_dir=str(tmp_path))
    assert "broken_syntax.bpf.c" in err.message and "expected ';'" in err.message
    assert "error" in err.detail


def test_verifier_rejection_shows_the_log_tail(filtering):
    err = fails(filtering.deploy, "dp", "reject")
    assert err.message.startswith("the kernel verifier rejected program 'unchecked_read'")
    assert "invalid access to packet" in err.detail
    err = fails(filtering.deploy, "dp", "reject", check_mode=True)  # check mode catches it too
    assert "verifier rejected" in err.message


def test_unknown_interface(filtering):
    err = fails(filtering.deploy, "dp", interface="nosuch0")
    assert err.message == "interface 'nosuch0' does not exist on this host; check the interface option."


def test_no_such_function(filtering):
    err = fails(filtering.deploy, "dp", "two", program="nope")
    assert "'nope' is not a BPF program" in err.message and "pass_all, drop_all, tc_pass" in err.message
    err = fails(filtering.deploy, "dp", "two")
    assert "holds 2 xdp programs (pass_all, drop_all)" in err.message
    err = fails(filtering.deploy, "dp", "two", program="tc_pass")
    assert "is not a xdp program" in err.message


def test_program_option_picks_one_of_several(filtering):
    result = filtering.deploy("all", "two", program="drop_all", priority=90, check_mode=True)
    assert result["changed"] and result["verified"]


def test_config_key_unknown_or_wrong_type(filtering):
    err = fails(filtering.deploy, "dp", config={"drop_prot": 7000})
    assert "config key 'drop_prot' is not a const volatile global" in err.message
    assert "drop_port, drop_proto" in err.message
    err = fails(filtering.deploy, "dp", config={"drop_port": "http"})
    assert err.message == "config key 'drop_port' must be an integer from 0 to 65535 (__u16); got 'http'."
    err = fails(filtering.deploy, "dp", config={"drop_port": 70000})
    assert "got 70000" in err.message
    err = fails(filtering.deploy, "dp", config={"ws_chain_slot": 3})
    assert "reserved" in err.message


def test_mode_not_supported_by_driver(filtering):
    err = fails(filtering.deploy, "other", mode="offload", priority=60)
    assert err.message.startswith("the driver of interface %r does not support XDP mode offload" % filtering.ifname)


def test_native_mode_on_a_driver_without_it(dut):
    """A bridge device has no native XDP: native fails with the reason, auto falls back to generic."""
    subprocess.run(["ip", "-n", dut.dut, "link", "add", "wsbridge0", "type", "bridge"], check=True)
    err = fails(dut.deploy, "dp", interface="wsbridge0", mode="native")
    assert err.message.startswith("the driver of interface 'wsbridge0' does not support XDP mode native")
    with netns(dut.dut):
        assert "xdp" not in subprocess.run(["ip", "link", "show", "wsbridge0"], capture_output=True, check=True,
                                           text=True).stdout
    auto = dut.deploy("dp", interface="wsbridge0", mode="auto")
    assert auto["changed"] and auto["mode"] == "generic"
    assert auto["warnings"] == ["mode auto fell back to generic on wsbridge0: its driver refused native XDP, so every "
                                "packet pays for an skb first; set mode generic to make that explicit, or use a "
                                "driver with native XDP."]
    again = dut.deploy("dp", interface="wsbridge0", mode="auto")
    assert not again["changed"] and "warnings" not in again
    dut.remove("dp", interface="wsbridge0")


def test_bpffs_not_mountable(filtering, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    err = fails(filtering.deploy, "dp", bpffs=str(not_a_dir), config={"drop_port": 7001})
    assert err.message.startswith("the BPF filesystem is not mounted at %s and mounting it failed" % not_a_dir)


def test_clang_missing(filtering, tmp_path):
    err = fails(bpfcc.compile_source, os.path.join(TEST_BPF, "plain_blocklist.bpf.c"), [INCLUDE],
                cache_dir=str(tmp_path), clang="/nonexistent/clang")
    assert err.code == "clang_missing" and "/nonexistent/clang" in err.message


def test_foreign_program_needs_force(filtering, dut, objects):
    # take our chain off and put a foreign program on, as `ip link set ... xdp obj` would
    dut.remove("dp")
    subprocess.run(["ip", "-n", dut.dut, "link", "set", "dev", dut.ifname, "xdpgeneric", "obj",
                    objects["blocklist"], "sec", "xdp"], check=True)
    assert "xdp_blocklist" in dut.xdp_prog()
    err = fails(dut.deploy, "dp", config={"drop_port": 7000})
    assert "already runs XDP program 'xdp_blocklist'" in err.message and "force: true" in err.message
    assert "xdp_blocklist" in dut.xdp_prog()
    assert not dut.remove("dp")["changed"]  # absent without force leaves it
    assert "xdp_blocklist" in dut.xdp_prog()
    forced = dut.deploy("dp", config={"drop_port": 7000}, force=True)
    assert forced["changed"] and "wirespeed_root" in dut.xdp_prog()
    assert "xdp_blocklist" in forced["diff"]["before"]["foreign"]
