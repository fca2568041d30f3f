# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles on a lab host: feed files, the management override, roles sharing the chain. Their bad inputs are
in the reliability catalogue (tests/reliability/test_bad_inputs.py)."""

import os
import re

import pytest
from labplay import PLAYBOOKS, LabNet, assert_once, failure, playbook, running_lab

ROLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "role.yml")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory, "roles", 1) as fleet:
        first = playbook(fleet, ROLE, role_under_test="firewall", firewall_interfaces=["eth0"],
                         firewall_deny=[fleet.peer["ip2"]], firewall_port_rules=[{"proto": "udp", "port": 7001}])
        assert first["stats"]["lab1"]["failures"] == 0, first
        yield fleet


def xdp_id(lab):
    out = lab.ssh(lab.hosts[0], "ip -d link show eth0").stdout
    found = re.search(r"prog/xdp id (\d+)", out)
    return found.group(1) if found else None


def controller(lab):
    return lab.meta["controller"]


def test_bad_line_in_a_feed_file_names_file_and_line(lab, tmp_path):
    feed = tmp_path / "threats.txt"
    feed.write_text("# feed\n203.0.113.7\n203.0.113.0/33\n")
    before = xdp_id(lab)
    tasks = playbook(lab, ROLE, role_under_test="firewall", firewall_interfaces=["eth0"],
                     firewall_deny_files=[str(feed)])
    message = failure(tasks)
    assert_once(r"threats.txt line 3 is '203.0.113.0/33', which is not an IPv4", message)
    assert xdp_id(lab) == before


def test_override_keeps_the_entry_and_the_controller_still_passes(lab):
    tasks = playbook(lab, ROLE, role_under_test="firewall", firewall_interfaces=["eth0"],
                     firewall_deny=["198.18.0.0/15"], firewall_management_override=True)
    assert tasks["stats"]["lab1"]["failures"] == 0, tasks
    # the peer is inside the denied network and drops; Ansible itself still gets through (it just did)
    assert LabNet(lab, lab.hosts[0]).udp(7000, 10) == 0
    again = playbook(lab, ROLE, role_under_test="firewall", firewall_interfaces=["eth0"],
                     firewall_deny=[lab.peer["ip2"]], firewall_port_rules=[{"proto": "udp", "port": 7001}])
    assert again["stats"]["lab1"]["failures"] == 0
    assert LabNet(lab, lab.hosts[0]).udp(7000, 10) == 10


def chain(lab):
    """Program names of eth0's chain in order, read on the host by datapath_info (status.yml)."""
    tasks = playbook(lab, os.path.join(PLAYBOOKS, "status.yml"), limit="lab1")
    facts = tasks["Read programs, chains and counters"]["lab1"]
    return [p["name"] for p in facts["datapath"]["eth0"]["chain"]]


def test_roles_share_the_chain_and_removing_one_leaves_the_others(lab):
    added = playbook(lab, ROLE, role_under_test="ssh_limiter", ssh_limiter_interfaces=["eth0"])
    assert added["stats"]["lab1"]["failures"] == 0, added
    assert chain(lab) == ["firewall", "ssh_limiter"]
    removed = playbook(lab, ROLE, role_under_test="ssh_limiter", ssh_limiter_interfaces=["eth0"],
                       ssh_limiter_state="absent")
    assert removed["stats"]["lab1"]["failures"] == 0 and removed["stats"]["lab1"]["changed"] == 1
    assert chain(lab) == ["firewall"]
    net = LabNet(lab, lab.hosts[0])
    assert net.udp(7001, 10) == 0  # the firewall's port rule still holds


def test_a_list_over_the_explicit_capacity_fails_the_preflight_naming_both(lab):
    before = xdp_id(lab)
    tasks = playbook(lab, ROLE, role_under_test="firewall", firewall_interfaces=["eth0"],
                     firewall_deny=[lab.peer["ip2"], "203.0.113.7", "203.0.113.8"], firewall_capacity=2)
    assert_once(r"the lists give 3 IPv4 addresses, more than firewall_capacity 2; raise firewall_capacity",
                failure(tasks))
    assert xdp_id(lab) == before


def test_an_empty_feed_does_not_empty_the_deny_lists(lab, tmp_path):
    feed = tmp_path / "threats.txt"
    feed.write_text("# the download came back empty\n")
    before = xdp_id(lab)
    tasks = playbook(lab, ROLE, role_under_test="firewall", firewall_interfaces=["eth0"],
                     firewall_deny_files=[str(feed)], firewall_port_rules=[{"proto": "udp", "port": 7001}])
    assert_once(r"maps deny_v4, deny_v6, deny_net_v4, deny_net_v6 hold 1 entry and the entries given for them are "
                r"none.*set firewall_allow_empty: true", failure(tasks))
    assert xdp_id(lab) == before


def test_preflight_names_the_link_that_holds_the_hook_and_changes_nothing(lab, tmp_path):
    """Another tool holds mon0's XDP hook through a bpf_link (libbpf's bpf_program__attach_xdp, in the host's
    namespace): the role fails in its preflight with the sentence naming the link and the program."""
    import socket

    from conftest import TEST_BPF
    from netlab import netns

    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf
    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program import compile as bpfcc
    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.bpf_object import BpfObject

    obj = BpfObject(bpfcc.compile_source(os.path.join(TEST_BPF, "drop_all.bpf.c"), [], cache_dir=str(tmp_path))["path"])
    link = None
    try:
        obj.select(None, libbpf.PROG_TYPE_XDP)
        obj.load()
        with netns(lab.hosts[0]["ns"]):
            link = libbpf.lib().bpf_program__attach_xdp(obj.prog, socket.if_nametoindex("mon0"))
        assert link
        before = xdp_id(lab)
        tasks = playbook(lab, ROLE, role_under_test="firewall", firewall_interfaces=["eth0", "mon0"])
        message = failure(tasks)
        assert_once(r"interface 'mon0' already runs XDP program 'drop_all' \(id \d+, native mode\) that another "
                    r"tool attached through bpf_link \d+", message)
        assert "force never takes a link away" in message
        assert xdp_id(lab) == before  # eth0 untouched: the preflight failed before any change
    finally:
        if link:
            libbpf.lib().bpf_link__destroy(link)
        obj.close()


def test_a_feed_travels_as_key_bytes_and_a_one_line_change_is_one_entry(lab, tmp_path):
    """The firewall's feed reaches the host as the maps' key bytes: the first run fills each map, the re-run
    changes nothing, and one line added shows as one readable `+` line in --check --diff, then adds one entry."""
    feed = tmp_path / "threats.txt"
    lines = ["203.0.%d.%d" % (i // 250, i % 250 + 1) for i in range(600)] + ["192.0.2.0/24", "2001:db8::7",
                                                                             "2001:db8:bad::/48"]
    feed.write_text("# feed\n" + "\n".join(lines) + "\n")
    args = dict(role_under_test="firewall", firewall_interfaces=["eth0"], firewall_deny=[lab.peer["ip2"]],
                firewall_deny_files=[str(feed)], firewall_port_rules=[{"proto": "udp", "port": 7001}])

    def synced(tasks):
        names = [k for k in tasks if "Deploy the programs and fill their maps" in k]
        assert len(names) == 1, sorted(tasks)
        result = tasks[names[0]]["lab1"]
        assert not result.get("failed"), result
        return result, {name: (m["added"], m["removed"]) for p in result["programs"]
                        for name, m in (p.get("maps_synced") or {}).items()}
    try:
        _result, maps = synced(playbook(lab, ROLE, **args))
        assert maps["deny_v4"] == (600, 0) and maps["deny_net_v4"] == (1, 0)  # beside the inline entry, kept
        assert maps["deny_v6"] == (1, 0) and maps["deny_net_v6"] == (1, 0)
        again, maps = synced(playbook(lab, ROLE, **args))
        assert not again["changed"] and set(maps.values()) == {(0, 0)}
        feed.write_text("# feed\n" + "\n".join(lines + ["198.51.100.250"]) + "\n")
        preview, maps = synced(playbook(lab, ROLE, check=True, diff=True, **args))
        assert preview["changed"] and maps["deny_v4"] == (1, 0)
        shown = "".join(d.get("prepared") or "" for d in preview["diff"])
        assert "+ 198.51.100.250\n" in shown and shown.count("\n+ ") + shown.startswith("+ ") == 1
        _result, maps = synced(playbook(lab, ROLE, **args))
        assert maps["deny_v4"] == (1, 0) and set(maps.values()) - {(1, 0)} <= {(0, 0)}
    finally:  # the module's baseline (one deny entry, no feed) for the tests after this one
        back = playbook(lab, ROLE, role_under_test="firewall", firewall_interfaces=["eth0"],
                        firewall_deny=[lab.peer["ip2"]], firewall_port_rules=[{"proto": "udp", "port": 7001}])
        assert back["stats"]["lab1"]["failures"] == 0, back
