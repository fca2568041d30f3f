# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The XDP engine on a real kernel: verdicts proven by packets between two namespaces."""

import os
import pathlib
import socket
import struct
import time

from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs, libbpf, links
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import xdp_netlink as attach
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel.chain import Chain

UDP = 17


def drop(port):
    return {"drop_port": port, "drop_proto": UDP}


def blocklist_add(dut, name, ip):
    """Put ip into the pinned blocklist map of program `name` (value: 0 drops so far)."""
    fd = libbpf.obj_get(os.path.join(dut.pin_root, name, "maps", "blocklist"))
    try:
        libbpf.map_update(fd, socket.inet_aton(ip), struct.pack("Q", 0))
    finally:
        os.close(fd)


def blocklist_hits(dut, name, ip):
    fd = libbpf.obj_get(os.path.join(dut.pin_root, name, "maps", "blocklist"))
    try:
        raw = libbpf.map_lookup(fd, socket.inet_aton(ip), 8)
    finally:
        os.close(fd)
    return None if raw is None else struct.unpack("Q", raw)[0]


def test_deploy_drops_and_is_idempotent(dut):
    assert dut.udp(7000) == 20 and dut.udp(7001) == 20  # before: everything arrives
    first = dut.deploy("dp", config=drop(7000))
    assert first["changed"] and first["mode"] == "native" and first["prog_id"]
    assert "wirespeed_root" in dut.xdp_prog()
    assert dut.udp(7000) == 0
    assert dut.udp(7001) == 20
    second = dut.deploy("dp", config=drop(7000))
    assert not second["changed"]
    assert second["prog_id"] == first["prog_id"]


def test_drop_port_packet_table(dut):
    """The example on ws_parse_packet: its verdict per packet, every drop counted under deny_port."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet import UDP as Udp
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import ARP, Dot1Q, Ether

    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    v4, v6 = IP(src="198.18.0.9", dst="198.18.0.1"), IPv6(src="2001:db8::9", dst="2001:db8::1")
    xdp_drop, xdp_pass = 1, 2
    cases = [
        ("UDP to the port", eth / v4 / Udp(dport=7000), xdp_drop),
        ("UDP to another port", eth / v4 / Udp(dport=7001), xdp_pass),
        ("UDP from the port", eth / v4 / Udp(sport=7000, dport=53), xdp_pass),
        ("TCP to the port (drop_proto is UDP)", eth / v4 / TCP(dport=7000), xdp_pass),
        ("IPv6 UDP to the port", eth / v6 / Udp(dport=7000), xdp_drop),
        ("IPv6 hop-by-hop, then UDP to the port", eth / v6 / IPv6ExtHdrHopByHop() / Udp(dport=7000), xdp_drop),
        ("802.1Q-tagged UDP to the port", eth / Dot1Q(vlan=5) / v4 / Udp(dport=7000), xdp_drop),
        ("first fragment of UDP to the port", eth / IP(src="198.18.0.9", dst="198.18.0.1", flags="MF")
         / Udp(dport=7000), xdp_drop),
        ("later fragment: no port", eth / IP(src="198.18.0.9", dst="198.18.0.1", frag=2, proto=17)
         / (b"\x00\x35\x1b\x58" + b"x" * 12), xdp_pass),
        ("truncated UDP header", bytes(eth / v4 / Udp(dport=7000))[:38], xdp_pass),
        ("ARP", eth / ARP(), xdp_pass),
    ]
    maps = dut.deploy("dp", config=drop(7000))["maps"]
    fd = libbpf.obj_get(os.path.join(dut.pin_root, "dp", "prog"))
    try:
        with netns(dut.dut):
            for description, packet, verdict in cases:
                before = info.reason_counters(maps["ws_reasons"])["deny_port"]["packets"]
                assert libbpf.test_run(fd, bytes(packet))[0] == verdict, description
                counted = info.reason_counters(maps["ws_reasons"])["deny_port"]["packets"] - before
                assert counted == (verdict == xdp_drop), description
    finally:
        os.close(fd)


def test_check_mode_reports_and_changes_nothing(dut):
    check = dut.deploy("dp", check_mode=True, config=drop(7000))
    assert check["changed"] and check["verified"]
    assert dut.xdp_prog() == "" and not os.path.exists(dut.pin_root)
    assert dut.udp(7000) == 20
    real = dut.deploy("dp", config=drop(7000))
    edit = dut.deploy("dp", check_mode=True, config=drop(7002))
    assert edit["changed"]
    assert edit["diff"]["before"]["config"] == drop(7000)
    assert edit["diff"]["after"]["config"] == drop(7002)
    assert dut.udp(7000) == 0 and dut.udp(7002) == 20  # still the deployed version
    again = dut.deploy("dp", config=drop(7000), check_mode=True)
    assert not again["changed"] and again["prog_id"] == real["prog_id"]


def test_two_chained_programs_and_removing_one(dut):
    a = dut.deploy("a", config=drop(7000), priority=10)
    b = dut.deploy("b", config=drop(7001), priority=20)
    assert b["chain"] == ["a", "b"] and a["prog_id"] != b["prog_id"]
    assert dut.udp(7000) == 0 and dut.udp(7001) == 0 and dut.udp(7002) == 20
    gone = dut.remove("a")
    assert gone["changed"] and gone["chain"] == ["b"]
    assert dut.udp(7000) == 20 and dut.udp(7001) == 0
    assert not dut.remove("a")["changed"]
    dut.remove("b")
    assert dut.xdp_prog() == "" and not os.path.exists(dut.pin_root)
    assert dut.udp(7001) == 20


def test_priority_orders_the_chain_and_can_move(dut):
    dut.deploy("a", config=drop(7000), priority=10)
    dut.deploy("b", config=drop(7001), priority=20)
    moved = dut.deploy("a", config=drop(7000), priority=30)
    assert moved["changed"] and moved["chain"] == ["b", "a"]
    with netns(dut.dut):
        chain = Chain.open_pinned(dut.bpffs, dut.ifname)
        try:
            assert [entry[1] for entry in chain.order()] == [20, 30]
        finally:
            chain.close()
    assert dut.udp(7000) == 0 and dut.udp(7001) == 0
    assert not dut.deploy("a", config=drop(7000), priority=30)["changed"]


def test_third_party_program_deploys_alone_and_last(dut, objects, tmp_path):
    plain = dut.deploy("blocklist", "blocklist", priority=100)
    pinned = os.path.join(dut.pin_root, "blocklist", "maps", "blocklist")
    assert plain["changed"] and plain["maps"] == {"blocklist": pinned}
    blocklist_add(dut, "blocklist", dut.peer_ip)
    assert dut.udp(7005) == 0 and blocklist_hits(dut, "blocklist", dut.peer_ip) == 20
    assert not dut.deploy("blocklist", "blocklist", priority=100)["changed"]
    # a chained program in front of it: both act
    dut.deploy("dp", config=drop(7000), priority=10)
    assert dut.udp(7000) == 0 and blocklist_hits(dut, "blocklist", dut.peer_ip) == 20  # dropped before it
    # editing its source: check mode says changed, attaches nothing
    source = (pathlib.Path(__file__).parent / "bpf" / "plain_blocklist.bpf.c").read_text()
    edited = tmp_path / "plain_blocklist.bpf.c"
    edited.write_text(source.replace("return XDP_DROP;", "return *hits > 1000000 ? XDP_PASS : XDP_DROP;"))
    new_obj = objects["build"](str(edited))
    before = dut.xdp_prog()
    preview = dut.deploy("blocklist", new_obj, priority=100, check_mode=True)
    assert preview["changed"] and preview["diff"]["before"]["tag"] != preview["diff"]["after"]["tag"]
    assert dut.xdp_prog() == before and preview["prog_id"] is None
    assert dut.remove("blocklist")["changed"]
    assert dut.udp(7005) == 20 and dut.udp(7000) == 0


def test_plain_program_must_run_last(dut):
    dut.deploy("blocklist", "blocklist", priority=10)
    blocklist_add(dut, "blocklist", dut.peer_ip)
    try:
        dut.deploy("dp", config=drop(7000), priority=50)
    except Exception as exc:  # noqa: BLE001 - the message is what is checked
        assert "does not hand packets on" in str(exc) and "'blocklist'" in str(exc)
    else:
        raise AssertionError("a program after a plain one was accepted")
    assert dut.remove("dp")["changed"] is False
    assert dut.udp(7001) == 0  # the blocklist still filters


def test_replace_under_traffic_loses_nothing_and_keeps_map_entries(dut, objects):
    """Upgrade programs and the root while traffic flows: every allowed datagram arrives, no denied one leaks."""
    dut.deploy("blocklist", "blocklist", priority=100)
    blocklist_add(dut, "blocklist", "203.0.113.9")  # an entry that must survive upgrades
    dut.deploy("dp", config=drop(7050), priority=10)
    count, rate = 4000, 2000.0
    allowed, denied = dut.receiver(7100), dut.receiver(7050)
    try:
        senders = [dut.start_sender(7100, count, rate), dut.start_sender(7050, count, rate)]
        replaced = 0
        for i in range(6):  # ~2 s of traffic; each round swaps in other instructions everywhere
            v2 = i % 2 == 0
            result = dut.deploy("dp", "drop_port_v2" if v2 else "drop_port", config=drop(7050), priority=10,
                                root_object=objects["root_v2" if v2 else "root"])
            assert result["changed"]
            assert dut.deploy("blocklist", "blocklist_v2" if v2 else "blocklist", priority=100)["changed"]
            replaced += 1
            time.sleep(0.2)
        for sender in senders:
            sender.wait(timeout=30)
        received, leaked = dut.drain(allowed), dut.drain(denied)
    finally:
        allowed.close()
        denied.close()
    assert replaced == 6
    assert received == count  # nothing lost
    assert leaked == 0  # never a moment without the filter
    assert blocklist_hits(dut, "blocklist", "203.0.113.9") == 0  # the entry survived every upgrade


def test_changed_map_definition_recreates_the_map(dut):
    dut.deploy("blocklist", "blocklist", priority=100)
    blocklist_add(dut, "blocklist", dut.peer_ip)
    bigger = dut.deploy("blocklist", "blocklist_big", priority=100)
    assert bigger["changed"] and bigger["maps_recreated"] == ["blocklist"]
    assert blocklist_hits(dut, "blocklist", dut.peer_ip) is None
    assert dut.udp(7000) == 20


def test_generic_mode_and_mode_switch(dut):
    gen = dut.deploy("dp", config=drop(7000), mode="generic")
    assert gen["mode"] == "generic"
    with netns(dut.dut):
        assert attach.xdp_state(links.ifindex(dut.ifname))["mode"] == "generic"
    assert dut.udp(7000) == 0
    assert not dut.deploy("dp", config=drop(7000), mode="auto")["changed"]  # auto keeps what runs
    native = dut.deploy("dp", config=drop(7000), mode="native")
    assert native["changed"] and native["mode"] == "native"
    assert native["prog_id"] == gen["prog_id"]  # only the root moved; the program kept its slot
    assert not dut.deploy("dp", config=drop(7000), mode="native")["changed"]
    assert "xdp " in dut.xdp_prog() or "prog/xdp" in dut.xdp_prog()
    assert dut.udp(7000) == 0 and dut.udp(7001) == 20


def test_state_records_current_and_previous(dut):
    dut.deploy("dp", config=drop(7000))
    dut.deploy("dp", config=drop(7001))
    result = dut.deploy("dp", config=drop(7001))
    assert result["previous"]["config"] == drop(7000)
    state = (pathlib.Path(dut.state_dir) / "state.json").read_text()
    assert '"drop_port": 7001' in state and '"drop_port": 7000' in state
    dut.remove("dp")
    assert bpffs.mounted_bpffs(dut.bpffs)


def test_custom_pin_path_is_found_again(dut):
    custom = os.path.join(dut.bpffs, "wstest%s" % dut.suffix)
    try:
        first = dut.deploy("blocklist", "blocklist", priority=100, pin_path=custom)
        assert first["maps"]["blocklist"] == os.path.join(custom, "maps", "blocklist")
        assert os.path.exists(os.path.join(custom, "prog"))
        blocklist_add_path = first["maps"]["blocklist"]
        fd = libbpf.obj_get(blocklist_add_path)
        try:
            libbpf.map_update(fd, socket.inet_aton(dut.peer_ip), struct.pack("Q", 0))
        finally:
            os.close(fd)
        assert dut.udp(7000) == 0
        again = dut.deploy("blocklist", "blocklist", priority=100, pin_path=custom)
        assert not again["changed"] and again["chain"] == ["blocklist"]
        gone = dut.remove("blocklist")  # found through the interface directory, no pin_path needed
        assert gone["changed"] and not os.path.exists(custom) and dut.xdp_prog() == ""
    finally:
        bpffs.remove_tree(custom)


def test_a_newer_root_replaces_the_old_one_in_place(dut, objects):
    dut.deploy("dp", config=drop(7000))
    old_root = dut.xdp_prog()
    upgraded = dut.deploy("dp", config=drop(7000), root_object=objects["root_v2"])
    assert upgraded["changed"]
    assert upgraded["diff"]["before"]["root_tag"] != upgraded["diff"]["after"]["root_tag"]
    assert dut.xdp_prog() != old_root and "wirespeed_root" in dut.xdp_prog()
    assert dut.udp(7000) == 0 and dut.udp(7001) == 20  # the chain behind the new root is intact
    assert not dut.deploy("dp", config=drop(7000), root_object=objects["root_v2"])["changed"]


def test_check_mode_without_verifier_compares_the_record(dut, objects):
    deployed = dut.deploy("dp", config=drop(7000))
    same = dut.deploy("dp", config=drop(7000), check_mode=True, verify=False)
    assert not same["changed"] and not same["verified"] and same["prog_id"] == deployed["prog_id"]
    other = dut.deploy("dp", config=drop(7001), check_mode=True, verify=False)
    assert other["changed"] and not other["verified"]
    # a program the verifier would refuse is not caught without it, and is with it
    assert dut.deploy("dp", "reject", check_mode=True, verify=False)["changed"]
    assert dut.udp(7000) == 0
