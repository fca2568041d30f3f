# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several maps of one program in one call (xdp_map_entry maps=): all checked before any changes, all or none."""

import os

import pytest
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel.maps import PinnedMap

FIREWALL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "files", "bpf", "firewall.bpf.c")


@pytest.fixture
def firewall(dut, objects):
    dut.deploy("fw", objects["build"](FIREWALL), priority=10)
    return dut


def sync(dut, specs, **kw):
    with netns(dut.dut):
        return mapsync.sync_all(specs, interface=dut.ifname, name="fw", bpffs_path=dut.bpffs,
                                state_dir=dut.state_dir, **kw)


def keys(dut, name):
    with PinnedMap(os.path.join(dut.pin_root, "fw", "maps", name)) as m:
        return sorted(m.dump())


def test_all_maps_in_one_call_then_nothing_to_do(firewall):
    specs = [{"map": "deny_v4", "key_type": "ipv4", "entries": ["203.0.113.7", "203.0.113.8"], "exclusive": True},
             {"map": "deny_net_v4", "entries": ["192.0.2.0/24"], "exclusive": True},
             {"map": "deny_ports", "entries": ["udp/7001"], "exclusive": True}]
    first = sync(firewall, specs)
    assert first["changed"] and first["maps"]["deny_v4"]["added"] == 2 and first["maps"]["deny_ports"]["added"] == 1
    assert [d["prepared"].splitlines()[0] for d in first["diff"]] == ["+ 203.0.113.7", "+ 192.0.2.0/24", "+ udp/7001"]
    assert firewall.udp(7001, 5) == 0
    again = sync(firewall, specs)
    assert not again["changed"] and all(not r["changed"] for r in again["maps"].values())


def test_a_bad_entry_in_any_map_changes_no_map(firewall):
    sync(firewall, [{"map": "deny_v4", "key_type": "ipv4", "entries": ["203.0.113.7"], "exclusive": True}])
    before = keys(firewall, "deny_v4"), keys(firewall, "deny_net_v4")
    with pytest.raises(DatapathError) as err:
        sync(firewall, [{"map": "deny_v4", "key_type": "ipv4", "entries": ["198.51.100.1"], "exclusive": True},
                        {"map": "deny_net_v4", "entries": ["192.0.2.1/24"], "exclusive": True}])
    assert err.value.message.startswith("map deny_net_v4: entry 1: 192.0.2.1/24 has host bits set")
    assert (keys(firewall, "deny_v4"), keys(firewall, "deny_net_v4")) == before


def test_a_map_too_small_for_its_entries_changes_no_map(firewall):
    sync(firewall, [{"map": "deny_v4", "key_type": "ipv4", "entries": ["203.0.113.7"], "exclusive": True}])
    before = keys(firewall, "deny_v4"), keys(firewall, "allow_v4")
    with PinnedMap(os.path.join(firewall.pin_root, "fw", "maps", "allow_v4")) as m:
        room = m.max_entries
    too_many = ["10.%d.%d.0/24" % (i >> 8, i & 255) for i in range(room + 1)]
    with pytest.raises(DatapathError) as err:
        sync(firewall, [{"map": "deny_v4", "key_type": "ipv4", "entries": ["198.51.100.1"], "exclusive": True},
                        {"map": "allow_v4", "entries": too_many, "exclusive": True}])
    assert "allow_v4" in err.value.message and "max_entries %d" % room in err.value.message
    assert (keys(firewall, "deny_v4"), keys(firewall, "allow_v4")) == before


def test_a_kernel_refusal_in_a_later_map_puts_back_the_maps_already_written(firewall, monkeypatch):
    sync(firewall, [{"map": "deny_v4", "key_type": "ipv4", "entries": ["203.0.113.7"], "exclusive": True}])
    before = keys(firewall, "deny_v4"), keys(firewall, "deny_net_v4")
    real_apply = mapsync.Sync.apply

    def refused(change):
        if change.map.path.endswith("deny_net_v4"):
            raise DatapathError("the kernel refused the update of %s: out of memory" % change.map.path)
        real_apply(change)
    monkeypatch.setattr(mapsync.Sync, "apply", refused)
    with pytest.raises(DatapathError, match="out of memory"):
        sync(firewall, [{"map": "deny_v4", "key_type": "ipv4", "entries": ["198.51.100.1"], "exclusive": True},
                        {"map": "deny_net_v4", "entries": ["192.0.2.0/24"], "exclusive": True}])
    assert (keys(firewall, "deny_v4"), keys(firewall, "deny_net_v4")) == before


def test_map_names_are_checked_for_every_map(firewall):
    with pytest.raises(DatapathError) as err:
        sync(firewall, [{"map": "../../x", "entries": []}])
    assert "map '../../x' is not a BPF map name" in err.value.message


def test_a_feed_that_comes_back_empty_does_not_empty_guarded_lists(firewall):
    listed = ["203.0.113.%d" % i for i in range(1, 6)]
    guard = {"exclusive": True, "allow_empty": False, "allow_empty_var": "firewall_allow_empty"}
    v4, nets = dict(guard, map="deny_v4", key_type="ipv4"), dict(guard, map="deny_net_v4")
    sync(firewall, [dict(v4, entries=listed), dict(nets, entries=["192.0.2.0/24"])])
    before = keys(firewall, "deny_v4"), keys(firewall, "deny_net_v4")
    for check_mode in (True, False):
        with pytest.raises(DatapathError) as err:
            sync(firewall, [dict(v4, entries=[]), dict(nets, entries=[])], check_mode=check_mode)
        assert err.value.message.startswith("maps deny_v4, deny_net_v4 hold 6 entries and the entries given for "
                                            "them are none, which would empty them")
        assert "set firewall_allow_empty: true" in err.value.message
        assert (keys(firewall, "deny_v4"), keys(firewall, "deny_net_v4")) == before  # neither list changed
    # one list emptied while the other keeps entries is an ordinary change (an address replaced by its network)
    assert sync(firewall, [dict(v4, entries=[]), dict(nets, entries=["203.0.113.0/24"])])["changed"]
    assert keys(firewall, "deny_v4") == []
    assert sync(firewall, [dict(v4, entries=[]), dict(nets, entries=[], allow_empty=True)])["changed"]
    assert keys(firewall, "deny_net_v4") == []
    assert not sync(firewall, [dict(v4, entries=[]), dict(nets, entries=[])])["changed"]  # empty stays empty
