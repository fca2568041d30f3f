# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""info.problems: one sentence per program with XDP_ABORTED packets and per interface in an unexpected generic mode."""

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info


def iface(mode, aborted=0):
    return {"xdp_mode": mode, "programs": {"fw": {"health": {"aborted": aborted}},
                                           "foreign": {"health": {"aborted": None}}}}


LINKS = {"eth0": {"xdp_native": True, "driver": "veth"}, "br0": {"xdp_native": False, "driver": "bridge"},
         "eth9": {"xdp_native": None, "driver": "hardware"}}


def test_a_healthy_interface_has_no_problem():
    datapath = {"eth0": iface("native")}
    assert info.problems(datapath, LINKS) == []
    assert datapath["eth0"]["xdp_generic_unexpected"] is False


def test_aborted_packets_are_a_problem_named_by_interface_and_program():
    assert info.problems({"eth0": iface("native", aborted=7)}, LINKS) == [
        "eth0/fw: 7 packets ended in XDP_ABORTED, a program error (the xdp:xdp_exception tracepoint shows where)."]


@pytest.mark.parametrize("ifname, generic_ok, expected", [
    ("eth0", [], True),          # the driver runs XDP natively: generic is a fallback someone should look at
    ("eth0", ["eth0"], False),   # ... unless generic is meant
    ("br0", [], False),          # a bridge has only generic
    ("eth9", [], False),         # not known: not flagged
])
def test_generic_mode_is_a_problem_only_where_native_was_possible(ifname, generic_ok, expected):
    datapath = {ifname: iface("generic")}
    found = info.problems(datapath, LINKS, generic_ok)
    assert datapath[ifname]["xdp_generic_unexpected"] is expected
    assert bool(found) is expected
    if expected:
        assert found[0].startswith("eth0: XDP runs in generic mode though its driver (veth) runs XDP natively")
