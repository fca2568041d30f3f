# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tc_filter's engine on a real kernel: clsact, cls_bpf, packets, foreign filters, bad input."""

import os
import socket
import subprocess
import time

import pytest
from conftest import TEST_BPF, tc_hook
from netlab import netns
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError

IP_RECVTOS = 13


def drop(port):
    return {"drop_port": port}


def tos_seen(dut, port, count=5):
    """Send from dut to peer:port; return the TOS bytes the peer received (the kernel drops bad checksums)."""
    with netns(dut.peer):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    rx.bind((dut.peer_ip, port))
    rx.settimeout(1.0)
    with netns(dut.dut):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(count):
            tx.sendto(b"tos%d" % i, (dut.peer_ip, port))
        seen = []
        for _attempt in range(count):
            try:
                _data, anc, _flags, _addr = rx.recvmsg(64, socket.CMSG_SPACE(1))
            except socket.timeout:
                break
            seen.extend(data[0] for level, kind, data in anc if level == socket.IPPROTO_IP and kind == 1)
        return seen
    finally:
        rx.close()
        tx.close()


def test_ingress_drop_idempotent_and_removed(dut):
    assert dut.udp(7000) == 20
    first = dut.tc_deploy("tcdrop", config=drop(7000), priority=10)
    assert first["changed"] and first["prog_id"]
    assert "wirespeed:tcdrop" in dut.tc_show() and "direct-action" in dut.tc_show()
    assert dut.udp(7000) == 0 and dut.udp(7001) == 20
    again = dut.tc_deploy("tcdrop", config=drop(7000), priority=10)
    assert not again["changed"] and again["prog_id"] == first["prog_id"]
    preview = dut.tc_deploy("tcdrop", config=drop(7001), priority=10, check_mode=True)
    assert preview["changed"] and preview["diff"]["before"]["config"] == drop(7000)
    assert dut.udp(7000) == 0 and dut.udp(7001) == 20  # check mode changed nothing
    gone = dut.tc_remove("tcdrop", priority=10)
    assert gone["changed"] and not dut.tc_remove("tcdrop", priority=10)["changed"]
    assert dut.udp(7000) == 20
    qdiscs = subprocess.run(["ip", "netns", "exec", dut.dut, "tc", "qdisc", "show", "dev", dut.ifname],
                            capture_output=True, text=True, check=True).stdout
    assert "clsact" not in qdiscs  # we created it and nothing is left on it


def test_egress_dscp_marking_seen_on_the_peer(dut):
    """The engine on a program whose rules live in a map and whose .rodata holds one switch (trust)."""
    config = {"trust": 0}
    assert tos_seen(dut, 7400) == [0] * 5
    first = dut.tc_deploy("dscp", "dscp", direction="egress", config=config)
    assert first["changed"]
    mapsync.sync(first["maps"]["rules"], entries=[{"key": {"prefixlen": 32, "proto": "udp", "side": 0, "port": 7400},
                                                   "value": 46}])
    assert tos_seen(dut, 7400) == [46 << 2] * 5  # marked, and the IPv4 checksum still valid
    assert tos_seen(dut, 7401) == [0] * 5  # other ports untouched
    assert not dut.tc_deploy("dscp", "dscp", direction="egress", config=config)["changed"]
    preview = dut.tc_deploy("dscp", "dscp", direction="egress", config=dict(config, trust=1), check_mode=True)
    assert preview["changed"] and preview["diff"]["after"]["config"]["trust"] == 1
    assert tos_seen(dut, 7400) == [46 << 2] * 5


def test_foreign_filter_coexists_and_survives_our_removal(dut, objects):
    # someone else's filter, added with plain tc: drops UDP to 7002
    subprocess.run(["ip", "netns", "exec", dut.dut, "tc", "qdisc", "add", "dev", dut.ifname, "clsact"], check=True)
    subprocess.run(["ip", "netns", "exec", dut.dut, "tc", "filter", "add", "dev", dut.ifname, "ingress", "pref",
                    "20", "bpf", "da", "obj", objects["tc_drop_7002"], "sec", "tc"], check=True)
    ours = dut.tc_deploy("tcdrop", config=drop(7000), priority=10)
    assert ours["changed"]
    assert dut.udp(7000) == 0 and dut.udp(7002) == 0 and dut.udp(7001) == 20
    with pytest.raises(DatapathError) as err:
        dut.tc_deploy("other", config=drop(7003), priority=20)
    assert err.value.message.startswith("priority 20 on %s ingress is taken by filter '" % dut.ifname)
    assert "force: true" in err.value.message
    dut.tc_remove("tcdrop", priority=10)
    assert dut.udp(7000) == 20 and dut.udp(7002) == 0  # theirs still in place and working
    assert "pref 20" in dut.tc_show() and "wirespeed" not in dut.tc_show()


def test_replace_under_traffic_loses_nothing(dut):
    dut.tc_deploy("tcdrop", config=drop(7050), priority=10)
    count, rate = 3000, 2000.0
    allowed, denied = dut.receiver(7100), dut.receiver(7050)
    try:
        senders = [dut.start_sender(7100, count, rate), dut.start_sender(7050, count, rate)]
        for i in range(6):
            obj = "tc_drop_port_v2" if i % 2 == 0 else "tc_drop_port"
            assert dut.tc_deploy("tcdrop", obj, config=drop(7050), priority=10)["changed"]
            time.sleep(0.15)
        for sender in senders:
            sender.wait(timeout=30)
        received, leaked = dut.drain(allowed), dut.drain(denied)
    finally:
        allowed.close()
        denied.close()
    assert received == count and leaked == 0


def test_moving_priority_keeps_filtering(dut):
    dut.tc_deploy("tcdrop", config=drop(7000), priority=10)
    moved = dut.tc_deploy("tcdrop", config=drop(7000), priority=30)
    assert moved["changed"]
    show = dut.tc_show()
    assert "pref 30" in show and "pref 10" not in show
    assert dut.udp(7000) == 0
    assert not dut.tc_deploy("tcdrop", config=drop(7000), priority=30)["changed"]


# ---- bad input: one sentence, nothing changed --------------------------------------------

@pytest.fixture
def filtering(dut):
    dut.tc_deploy("tcdrop", config=drop(7000), priority=10)
    assert dut.udp(7000) == 0
    yield dut
    assert dut.udp(7000) == 0, "the previous filter stopped working"
    assert dut.udp(7001) == 20


def fails(fn, *args, **kw):
    with pytest.raises(DatapathError) as err:
        fn(*args, **kw)
    return err.value.message


def test_unknown_interface(filtering):
    msg = fails(filtering.tc_deploy, "x", interface="nosuch0")
    assert msg == "interface 'nosuch0' does not exist on this host; check the interface option."


def test_direction_must_be_ingress_or_egress():
    msg = fails(tc_hook, "eth0", "sideways", "x")
    assert msg == "direction 'sideways' is not one of ingress, egress."


def test_program_of_the_wrong_type(filtering):
    msg = fails(filtering.tc_deploy, "tcdrop", "drop_port", config=drop(7001), priority=10)
    assert "holds no tc (sched_cls) program (it has drop_port_prog, of type xdp)" in msg
    msg = fails(filtering.tc_deploy, "tcdrop", "two", program="pass_all", priority=10)
    assert "'pass_all'" in msg and "is not a tc (sched_cls) program" in msg


def test_verifier_rejection(filtering):
    msg = fails(filtering.tc_deploy, "tcdrop", "tc_reject", priority=10)
    assert msg.startswith("the kernel verifier rejected program 'tc_unchecked'")


def test_name_held_by_an_xdp_program(filtering):
    filtering.deploy("shared", config={"drop_port": 7009})
    msg = fails(filtering.tc_deploy, "shared", priority=40)
    assert msg == "name 'shared' on interface %r is already an XDP program deployed by wirespeed; choose another " \
                  "name." % filtering.ifname


def test_datapath_info_lists_ours_and_foreign_filters(dut, objects):
    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info

    subprocess.run(["ip", "netns", "exec", dut.dut, "tc", "qdisc", "add", "dev", dut.ifname, "clsact"], check=True)
    subprocess.run(["ip", "netns", "exec", dut.dut, "tc", "filter", "add", "dev", dut.ifname, "ingress", "pref",
                    "20", "bpf", "da", "obj", objects["tc_drop_7002"], "sec", "tc"], check=True)
    ours = dut.tc_deploy("tcdrop", config=drop(7000), priority=10)
    with netns(dut.dut):
        facts = info.gather([dut.ifname], state_dir=dut.state_dir)[dut.ifname]
    ingress = facts["tc"]["ingress"]
    assert [(f["pref"], f["managed"], f["program"]) for f in ingress] == [(10, True, "tcdrop"), (20, False, None)]
    assert ingress[0]["prog_id"] == ours["prog_id"] and ingress[1]["prog_id"] and ingress[1]["direct_action"]
    assert facts["programs"]["tcdrop"]["hook"] == "tc ingress"
    assert facts["programs"]["tcdrop"]["record"]["config"] == drop(7000)


def test_force_replaces_a_foreign_filter_at_our_priority(dut, objects):
    subprocess.run(["ip", "netns", "exec", dut.dut, "tc", "qdisc", "add", "dev", dut.ifname, "clsact"], check=True)
    subprocess.run(["ip", "netns", "exec", dut.dut, "tc", "filter", "add", "dev", dut.ifname, "ingress", "pref",
                    "20", "bpf", "da", "obj", objects["tc_drop_7002"], "sec", "tc"], check=True)
    forced = dut.tc_deploy("tcdrop", config=drop(7000), priority=20, force=True)
    assert forced["changed"] and "(bpf, priority 20, handle 0x1)" in forced["diff"]["before"]["foreign"][0]
    assert dut.udp(7000) == 0 and dut.udp(7002) == 20  # ours replaced theirs
    assert not dut.tc_deploy("tcdrop", config=drop(7000), priority=20)["changed"]
    dut.tc_remove("tcdrop", priority=20)
    qdiscs = subprocess.run(["ip", "netns", "exec", dut.dut, "tc", "qdisc", "show", "dev", dut.ifname],
                            capture_output=True, text=True, check=True).stdout
    assert "clsact" in qdiscs  # not ours to remove: it was there before us


@pytest.mark.parametrize("verdict, action", [
    (0, "pass"),  # TC_ACT_OK
    (0xFFFFFFFF, "pass"),  # TC_ACT_UNSPEC: the next filter decides
    (3, "pass"),  # TC_ACT_PIPE
    (2, "drop"),  # TC_ACT_SHOT
    (4, "drop"),  # TC_ACT_STOLEN
    (7, "redirect"),  # TC_ACT_REDIRECT
])
def test_tc_verdicts_count_on_the_xdp_action_indices(dut, objects, verdict, action):
    """ws_stats of a TC program reads like an XDP one, so datapath_info and the status table need no TC case."""
    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info
    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf

    obj = objects["build"](os.path.join(TEST_BPF, "tc_verdict.bpf.c"))
    maps = dut.tc_deploy("verdict", obj, config={"verdict": verdict}, priority=10)["maps"]
    packet = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="198.18.0.9", dst="198.18.0.1")
                   / UDP(dport=9) / (b"v" * 58))
    before = info.action_counters(maps["ws_stats"])
    fd = libbpf.obj_get(os.path.join(dut.pin_root, "verdict", "prog"))
    try:
        with netns(dut.dut):
            for _i in range(5):
                assert libbpf.test_run(fd, packet)[0] == verdict
    finally:
        os.close(fd)
    after = info.action_counters(maps["ws_stats"])
    delta = {k: (after[k]["packets"] - before[k]["packets"], after[k]["bytes"] - before[k]["bytes"]) for k in after}
    packets, octets = delta.pop(action)
    assert packets >= 5 and octets >= 5 * len(packet)  # the link's own packets (ARP, ND) land here too
    assert set(delta.values()) == {(0, 0)}
