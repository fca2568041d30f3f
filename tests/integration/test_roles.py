# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' preflight on a lab host: each bad input fails with one sentence naming it, and the
datapath that was running stays as it was."""

import os
import re

import pytest
from labplay import PLAYBOOKS, LabNet, playbook, running_lab

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


def failure(tasks):
    """The message of the one failed task."""
    messages = [r.get("msg") for name, hosts in tasks.items() if name not in ("stats", "rc")
                for r in hosts.values() if isinstance(r, dict) and r.get("failed")]
    assert len(messages) == 1, messages
    return messages[0] if isinstance(messages[0], str) else " ".join(messages[0])


def assert_once(pattern, message):
    """The message matches the pattern exactly once, and says nothing twice in a row ("X: X: ...")."""
    assert len(re.findall(pattern, message)) == 1, message
    doubled = re.search(r"(\S.{15,}?)(?:: |\n)\1", message)
    assert doubled is None, "said twice: %r in %s" % (doubled.group(1), message)


def controller(lab):
    return lab.meta["controller"]


CASES = {
    "unknown interface": (dict(role_under_test="firewall", firewall_interfaces=["eth9"]),
                          r"firewall_interfaces names eth9, which does not exist on lab1"),
    "malformed address": (dict(role_under_test="firewall", firewall_interfaces=["eth0"],
                               firewall_deny=["192.0.2.0/24", "203.0.113.300"]),
                          r"firewall_deny item 2 is '203.0.113.300', which is not an IPv4 or IPv6 address"),
    "host bits": (dict(role_under_test="firewall", firewall_interfaces=["eth0"], firewall_allow=["10.1.2.3/8"]),
                  r"firewall_allow item 1 is '10.1.2.3/8', which has host bits set; write the network as 10.0.0.0/8"),
    "deny covers the controller": (
        dict(role_under_test="firewall", firewall_interfaces=["eth0"], firewall_deny=["198.18.0.0/15"]),
        r"the deny entry 198.18.0.0/15 covers {controller} \(the address Ansible connects from\).*"
        r"firewall_management_override: true"),
    "deny covers a management network": (
        dict(role_under_test="firewall", firewall_interfaces=["eth0"], firewall_deny=["10.0.0.0/8"],
             firewall_management_networks=["10.9.0.0/16"]),
        r"the deny entry 10.0.0.0/8 covers 10.9.0.0/16 \(a management network\)"),
    "port rule out of range": (dict(role_under_test="firewall", firewall_interfaces=["eth0"],
                                    firewall_port_rules=[{"proto": "tcp", "port": 70000}]),
                               r"firewall_port_rules rule 1 port is 70000, which is not a port"),
    "wrong type": (dict(role_under_test="firewall", firewall_interfaces=["eth0"], firewall_priority="first"),
                   r"firewall_priority"),
    "ssh port out of range": (dict(role_under_test="ssh_limiter", ssh_limiter_interfaces=["eth0"],
                                   ssh_limiter_ports=[22, 0]),
                              r"ssh_limiter_ports item 2 is 0, which is not a port; use 1 to 65535"),
    "too many ssh ports": (dict(role_under_test="ssh_limiter", ssh_limiter_interfaces=["eth0"],
                                ssh_limiter_ports=list(range(2000, 2017))),
                           r"ssh_limiter_ports has 17 ports; give at most 16"),
    "mutually exclusive": (dict(role_under_test="ssh_limiter", ssh_limiter_interfaces=["eth0"],
                                ssh_limiter_all_ports=True, ssh_limiter_ports=[22]),
                           r"ssh_limiter_all_ports and ssh_limiter_ports are mutually exclusive"),
    "mirror target is the source": (dict(role_under_test="mirror", mirror_interfaces=["eth0"], mirror_target="eth0"),
                                    r"mirror_target eth0 is also in mirror_interfaces"),
    "sample rate 0": (dict(role_under_test="mirror", mirror_interfaces=["eth0"], mirror_target="mon0",
                           mirror_sample_rate=0),
                      r"mirror_sample_rate is 0; give 1 \(every packet\) or more"),
    "too many mirror ports": (dict(role_under_test="mirror", mirror_interfaces=["eth0"], mirror_target="mon0",
                                   mirror_ports=list(range(2000, 2017))),
                              r"mirror_ports has 17 ports; give at most 16"),
    "mirror target missing": (dict(role_under_test="mirror", mirror_interfaces=["eth0"], mirror_target="ids9"),
                              r"mirror_interfaces or mirror_target names ids9, which does not exist on lab1"),
    "rate in bytes per second": (dict(role_under_test="egress_ratelimit", egress_ratelimit_interfaces=["eth0"],
                                      egress_ratelimit_rules=[{"destination": "192.0.2.0/24", "rate": "10mbps"}]),
                                 r"egress_ratelimit_rules rule 1 rate is '10mbps', which is not a rate"),
    "negative rate": (dict(role_under_test="egress_ratelimit", egress_ratelimit_interfaces=["eth0"],
                           egress_ratelimit_rules=[{"destination": "192.0.2.0/24", "rate": "1mbit"},
                                                   {"destination": "2001:db8::/32", "rate": -1}]),
                      r"egress_ratelimit_rules rule 2 rate is -1, which is not a rate"),
    "zero rate": (dict(role_under_test="egress_ratelimit", egress_ratelimit_interfaces=["eth0"],
                       egress_ratelimit_default_rate=0),
                  r"egress_ratelimit_default_rate is 0, which is no rate at all"),
    "burst under one frame": (dict(role_under_test="egress_ratelimit", egress_ratelimit_interfaces=["eth0"],
                                   egress_ratelimit_rules=[{"destination": "192.0.2.0/24", "rate": "1mbit",
                                                            "burst": 1000}]),
                              r"egress_ratelimit_rules rule 1 burst is 1000, which is less than one full frame"),
    "bad rate destination": (dict(role_under_test="egress_ratelimit", egress_ratelimit_interfaces=["eth0"],
                                  egress_ratelimit_rules=[{"destination": "192.0.2.1/24", "rate": "1mbit"}]),
                             r"egress_ratelimit_rules rule 1 destination is '192.0.2.1/24', which has host bits set"),
    "unknown DSCP name": (dict(role_under_test="dscp_marking", dscp_marking_interfaces=["eth0"],
                               dscp_marking_rules=[{"proto": "udp", "port": 5060, "dscp": "AF51"}]),
                          r"dscp_marking_rules rule 1 dscp is 'AF51', which is not a DSCP"),
    "DSCP over 63": (dict(role_under_test="dscp_marking", dscp_marking_interfaces=["eth0"],
                          dscp_marking_rules=[{"proto": "udp", "port": 5060, "dscp": 64}]),
                     r"dscp_marking_rules rule 1 dscp is 64, which is not a DSCP"),
    "reversed port range": (dict(role_under_test="dscp_marking", dscp_marking_interfaces=["eth0"],
                                 dscp_marking_rules=[{"proto": "udp", "port": "2000-1000", "dscp": "EF"}]),
                            r"dscp_marking_rules rule 1 port is '2000-1000', a reversed range"),
    "port range out of range": (dict(role_under_test="dscp_marking", dscp_marking_interfaces=["eth0"],
                                     dscp_marking_rules=[{"proto": "tcp", "port": "1000-70000", "dscp": "EF"}]),
                                r"dscp_marking_rules rule 1 port is '1000-70000', which is not a port range"),
    "overlapping DSCP rules": (dict(role_under_test="dscp_marking", dscp_marking_interfaces=["eth0"],
                                    dscp_marking_rules=[{"proto": "udp", "port": "5000-5100", "dscp": "EF"},
                                                        {"proto": "udp", "port": 5060, "dscp": "CS3"}]),
                               r"dscp_marking_rules rule 2 \(udp port 5060, DSCP 24\) overlaps rule 1, "
                               r"which sets DSCP 46"),
    "connection limit 0": (dict(role_under_test="conn_limiter", conn_limiter_interfaces=["eth0"],
                                conn_limiter_max_new_per_second=0),
                           r"conn_limiter_max_new_per_second is 0; give a whole number from 1 to 1000000000"),
    "negative connection burst": (dict(role_under_test="conn_limiter", conn_limiter_interfaces=["eth0"],
                                       conn_limiter_burst=-1),
                                  r"conn_limiter_burst is -1; give a whole number from 0 to 4294967295"),
    "bad connection allow entry": (dict(role_under_test="conn_limiter", conn_limiter_interfaces=["eth0"],
                                        conn_limiter_allow=["10.0.0.300"]),
                                   r"conn_limiter_allow item 1 is '10.0.0.300', which is not an IPv4 or IPv6"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_in_preflight_and_leaves_the_datapath(lab, case):
    extra, pattern = CASES[case]
    before = xdp_id(lab)
    assert before is not None
    tasks = playbook(lab, ROLE, **extra)
    assert tasks["stats"]["lab1"]["failures"] == 1
    assert tasks["stats"]["lab1"]["changed"] == 0
    message = failure(tasks)
    assert_once(pattern.format(controller=re.escape(controller(lab))), message)
    assert xdp_id(lab) == before


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
