# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""datapath_apply's pure parts: the packed transfer of a long list (and its refusal when damaged), and the
role-level program (interfaces, directions) turned into one program per interface and direction."""

import base64
import zlib

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import apply
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError

FEED = ["203.0.%d.%d" % (i // 256, i % 256) for i in range(5000)]


def test_a_packed_list_comes_back_as_it_was_and_is_smaller_than_its_json():
    packed = apply.pack(FEED)
    assert packed["compressed"] and packed["count"] == 5000
    assert len(packed["data"]) < len("\n".join(FEED)) / 2
    assert apply.unpack(packed, "map deny_v4") == FEED
    assert apply.unpack(apply.pack([]), "map deny_v4") == []


def _damaged(packed, how):
    data = bytearray(base64.b64decode(packed["data"]))
    if how == "flipped byte":
        data[len(data) // 2] ^= 0x40
        return dict(packed, data=base64.b64encode(bytes(data)).decode())
    if how == "cut short":
        return dict(packed, data=base64.b64encode(bytes(data[: len(data) // 2])).decode())
    if how == "not base64":
        return dict(packed, data=packed["data"][:100] + "*" + packed["data"][100:])
    if how == "other content, same count":
        text = "\n".join(FEED[:-1] + ["198.51.100.1"]).encode()
        return dict(packed, data=base64.b64encode(zlib.compress(text)).decode())
    if how == "no digest":
        return dict(packed, digest="")
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["flipped byte", "cut short", "not base64", "other content, same count", "no digest"])
def test_a_damaged_transfer_is_refused_in_one_sentence_naming_the_map(how):
    with pytest.raises(DatapathError) as info:
        apply.unpack(_damaged(apply.pack(FEED), how), "map deny_v4 of firewall on eth0")
    message = info.value.message
    assert message.startswith("the packed entries of map deny_v4 of firewall on eth0 did not arrive whole"), message
    assert "\n" not in message and message.endswith("run the task again.")


def test_a_damaged_list_stops_the_call_before_any_program_is_touched():
    calls = []
    programs = [{"name": "firewall", "interfaces": ["eth0"], "state": "present", "maps": []},
                {"name": "ssh_limiter", "interface": "eth0", "state": "present",
                 "maps": [{"map": "allow_v4", "packed_entries": _damaged(apply.pack(FEED), "flipped byte")}]}]
    with pytest.raises(DatapathError, match="allow_v4 of ssh_limiter on eth0 did not arrive whole"):
        apply.apply(programs, calls.append, bpffs_path="/nonexistent", state_dir="/nonexistent", check_mode=False,
                    diff=False)
    assert calls == []  # the firewall, first in the list, was not deployed either


def test_one_packed_list_on_two_interfaces_is_unpacked_once_and_joined_to_the_inline_entries():
    packed = apply.pack(FEED)
    programs = apply.expand([{"name": "firewall", "interfaces": ["eth0", "eth1"], "state": "present",
                              "maps": [{"map": "deny_v4", "entries": ["192.0.2.1"], "packed_entries": packed}]}])
    apply.unpack_all(programs)
    assert [p["interface"] for p in programs] == ["eth0", "eth1"]
    assert programs[0]["maps"][0]["entries"] == ["192.0.2.1"] + FEED
    assert programs[0]["maps"][0]["entries"] == programs[1]["maps"][0]["entries"]


@pytest.mark.parametrize("item, expected", [
    ({"name": "firewall", "interfaces": ["eth0", "eth1"]},
     [("eth0", None, "firewall", "present"), ("eth1", None, "firewall", "present")]),
    ({"name": "mirror", "hook": "tc", "interface": "eth0", "directions": ["ingress", "egress"]},
     [("eth0", "ingress", "mirror_ingress", "present"), ("eth0", "egress", "mirror_egress", "present")]),
    ({"name": "dscp_marking", "hook": "tc", "interfaces": ["eth0"], "directions": ["egress"],
      "absent_directions": ["ingress"]},
     [("eth0", "egress", "dscp_marking_egress", "present"), ("eth0", "ingress", "dscp_marking_ingress", "absent")]),
    ({"name": "mirror", "hook": "tc", "interfaces": ["eth0"], "directions": ["ingress"], "state": "absent"},
     [("eth0", "ingress", "mirror_ingress", "absent")]),
])
def test_a_role_level_program_becomes_one_program_per_interface_and_direction(item, expected):
    item = dict(item, maps=[{"map": "rules", "direction": "egress"}, {"map": "target"}])
    out = apply.expand([item])
    assert [(p["interface"], p["direction"], p["name"], p["state"]) for p in out] == expected
    for p in out:  # a map of one direction goes to that direction's program; a removed program syncs none
        want = [] if p["state"] == "absent" else ["rules", "target"] if p["direction"] == "egress" else ["target"]
        assert [m["map"] for m in p["maps"]] == want
