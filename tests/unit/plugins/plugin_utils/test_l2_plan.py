# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The l2_forwarder role's checks and plan, from `ip -j` output as the host prints it."""
import pytest

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _l2

LINKS = [
    {"ifindex": 1, "ifname": "lo", "address": "00:00:00:00:00:00"},
    {"ifindex": 2, "ifname": "eth0", "address": "02:00:00:00:00:01", "link_index": 9, "link_netnsid": 3,
     "linkinfo": {"info_kind": "veth"}},
    {"ifindex": 5, "ifname": "pa", "address": "02:00:00:00:0a:01", "link_index": 2, "link_netnsid": 0,
     "linkinfo": {"info_kind": "veth"}},
    {"ifindex": 6, "ifname": "pb", "address": "02:00:00:00:0b:01", "link_index": 2, "link_netnsid": 1,
     "linkinfo": {"info_kind": "veth"}},
    {"ifindex": 7, "ifname": "pc", "address": "02:00:00:00:0c:01", "link_index": 8,
     "linkinfo": {"info_kind": "veth"}},
    {"ifindex": 8, "ifname": "pc-end", "address": "02:00:00:00:0c:02", "link_index": 7,
     "linkinfo": {"info_kind": "veth"}},
    {"ifindex": 10, "ifname": "nic1", "address": "02:00:00:00:0d:01"},
]
NSIDS = [{"nsid": 0, "name": "blue"}, {"nsid": 1, "name": "green"}]
PEER_LINKS = {"blue": [{"ifindex": 2, "ifname": "e", "address": "02:aa:00:00:00:02"}],
              "green": [{"ifindex": 2, "ifname": "e", "address": "02:bb:00:00:00:02"}]}


def test_plan_finds_far_ends_in_namespaces_and_learns_their_macs():
    checked = {"ports": ["pa", "pb", "pc", "nic1"], "static": {"02:cc:00:00:00:09": "nic1"}}
    neighbours = [{"dst": "198.51.100.7", "dev": "nic1", "lladdr": "02:DD:00:00:00:07", "state": ["REACHABLE"]},
                  {"dst": "198.51.100.8", "dev": "eth0", "lladdr": "02:ee:00:00:00:08"}]
    fdb = [{"mac": "02:ff:00:00:00:01", "ifname": "pa", "flags": []},
           {"mac": "02:0a:00:00:00:01", "ifname": "pa", "flags": ["self"], "state": "permanent"}]
    out = _l2.plan(checked["ports"], checked["static"], LINKS, NSIDS, PEER_LINKS, neighbours, fdb)
    assert out["peers"] == [{"interface": "e", "netns": "blue", "port": "pa"},
                            {"interface": "e", "netns": "green", "port": "pb"},
                            {"interface": "pc-end", "netns": None, "port": "pc"}]
    assert out["fdb"]["02:aa:00:00:00:02"] == "pa" and out["fdb"]["02:bb:00:00:00:02"] == "pb"
    assert out["fdb"]["02:00:00:00:0c:02"] == "pc"
    assert out["fdb"]["02:dd:00:00:00:07"] == "nic1"  # the neighbour table, on a port only
    assert "02:ee:00:00:00:08" not in out["fdb"]
    assert out["fdb"]["02:ff:00:00:00:01"] == "pa"  # a learned bridge FDB entry; permanent/self ones are not
    assert out["fdb"]["02:cc:00:00:00:09"] == "nic1"  # static
    assert out["fdb"]["02:00:00:00:0a:01"] == 0  # the port's own MAC: to the host's stack
    assert out["ports"] == {"pa": "pa", "pb": "pb", "pc": "pc", "nic1": "nic1"}


def test_static_entries_win_over_learned_ones():
    out = _l2.plan(["pa", "pb"], {"02:aa:00:00:00:02": "pb"}, LINKS, NSIDS, PEER_LINKS)
    assert out["fdb"]["02:aa:00:00:00:02"] == "pb" and out["learned"]["02:aa:00:00:00:02"] == "pa"


def test_a_far_end_in_an_unnamed_namespace_is_one_sentence():
    with pytest.raises(_l2.L2Error, match=r"l2_forwarder_ports names pb, whose veth peer is in a network namespace"):
        _l2.plan(["pa", "pb"], {}, LINKS, NSIDS[:1], PEER_LINKS)


@pytest.mark.parametrize("ports, static, management, message", [
    (["pa", "eth0"], {}, "eth0", r"l2_forwarder_ports names eth0, the interface that carries Ansible's SSH"),
    (["pa"], {}, None, r"l2_forwarder_ports names only pa; a forwarder needs two ports"),
    (["pa", "pb", "pa"], {}, None, r"l2_forwarder_ports names pa twice"),
    ("pa", {}, None, r"l2_forwarder_ports must be a list"),
    (["pa", "pb"], {"02:aa:00:00:00": "pa"}, None,
     r"l2_forwarder_static holds '02:aa:00:00:00', which is not a MAC address"),
    (["pa", "pb"], {"zz:aa:00:00:00:01": "pa"}, None, r"which is not a MAC address"),
    (["pa", "pb"], {"02:aa:00:00:00:01": "pc"}, None,
     r"l2_forwarder_static sends 02:aa:00:00:00:01 to 'pc', which is not among l2_forwarder_ports \(pa, pb\)"),
])
def test_bad_input_names_variable_and_value(ports, static, management, message):
    with pytest.raises(_l2.L2Error, match=message):
        _l2.static(static, _l2.ports(ports, management))


def test_good_input_is_normalized():
    assert _l2.static({"02-AA-00-00-00-01": "pa"}, _l2.ports(["pa", "pb"], "eth0")) == {"02:aa:00:00:00:01": "pa"}
    assert _l2.static([{"mac": "02:aa:00:00:00:01", "interface": "pb"}], ["pa", "pb"]) == {"02:aa:00:00:00:01": "pb"}
