# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xdp_map_entry's engine on real maps of every kind, created with BTF by a loaded program."""

import os

import pytest
from conftest import TEST_BPF
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel.maps import PinnedMap, possible_cpus

NCPU = possible_cpus()


@pytest.fixture
def zoo(dut, objects):
    dut.deploy("zoo", objects["build"](os.path.join(TEST_BPF, "maps_zoo.bpf.c")), priority=100)

    def sync(map_name, **kw):
        with netns(dut.dut):
            return mapsync.sync(os.path.join(dut.pin_root, "zoo", "maps", map_name), **kw)

    def dump(map_name):
        with PinnedMap(os.path.join(dut.pin_root, "zoo", "maps", map_name)) as m:
            return m.dump()

    def fails(map_name, **kw):
        before = dump(map_name)
        with pytest.raises(DatapathError) as err:
            sync(map_name, **kw)
        assert dump(map_name) == before, "a failed task changed the map"
        return err.value.message

    sync.dump, sync.fails, sync.dut = dump, fails, dut
    return sync


def lines(result):
    return result["diff"]["prepared"].splitlines()


def test_hash_of_ipv4_round_trip_idempotent_exclusive_absent(zoo):
    first = zoo("hash_v4", entries=["198.51.100.7", "10.0.0.10", "10.0.0.1", "203.0.113.50"])
    assert first["changed"] and first["added"] == 4 and first["key_type"] == "ipv4"
    assert lines(first) == ["+ 10.0.0.1", "+ 10.0.0.10", "+ 198.51.100.7", "+ 203.0.113.50"]
    again = zoo("hash_v4", entries=["10.0.0.10", "10.0.0.1", "198.51.100.7", "203.0.113.50"])
    assert not again["changed"] and lines(again) == []
    read = zoo("hash_v4", return_entries=True, key_type="ipv4")  # a bare u32 key reads as a number otherwise
    assert [e["key"] for e in read["entries"]] == ["10.0.0.1", "10.0.0.10", "198.51.100.7", "203.0.113.50"]
    exclusive = zoo("hash_v4", entries=["10.0.0.1", "192.0.2.9"], exclusive=True)
    assert lines(exclusive) == ["+ 192.0.2.9", "- 10.0.0.10", "- 198.51.100.7", "- 203.0.113.50"]
    assert (exclusive["added"], exclusive["removed"], exclusive["updated"]) == (1, 3, 0)
    gone = zoo("hash_v4", entries=["10.0.0.1", "10.9.9.9"], state="absent")
    assert lines(gone) == ["- 10.0.0.1"]
    assert len(zoo.dump("hash_v4")) == 1


def test_check_mode_changes_nothing(zoo):
    zoo("hash_v4", entries=["10.0.0.1"])
    before = zoo.dump("hash_v4")
    preview = zoo("hash_v4", entries=["10.0.0.2"], exclusive=True, check_mode=True)
    assert preview["changed"] and lines(preview) == ["+ 10.0.0.2", "- 10.0.0.1"]
    assert zoo.dump("hash_v4") == before


def test_counters_survive_a_rerun_without_values(zoo):
    zoo("hash_v4", entries=[{"key": "10.0.0.1", "value": 41}, "10.0.0.2"])
    rerun = zoo("hash_v4", entries=["10.0.0.1", "10.0.0.2"], exclusive=True)
    assert not rerun["changed"]
    read = zoo("hash_v4", return_entries=True, key_type="ipv4")["entries"]
    assert {e["key"]: e["value"] for e in read} == {"10.0.0.1": 41, "10.0.0.2": 0}
    changed = zoo("hash_v4", entries={"10.0.0.1": 42})
    assert lines(changed) == ["~ 10.0.0.1: 41 -> 42"]


def test_lru_hash(zoo):
    assert zoo("lru", key="192.0.2.1", value=3)["added"] == 1
    assert not zoo("lru", key="192.0.2.1", value=3)["changed"]


def test_ipv6_hash_with_explicit_type(zoo):
    result = zoo("hash_v6", entries=["2001:db8::1", "2001:DB8::2"], key_type="ipv6")
    assert lines(result) == ["+ 2001:db8::1", "+ 2001:db8::2"]
    assert not zoo("hash_v6", entries=["2001:db8:0::1", "2001:db8::2"], key_type="ipv6")["changed"]


def test_lpm_tries_v4_and_v6(zoo):
    v4 = zoo("lpm4", entries={"10.0.0.0/8": 1, "192.0.2.0/24": 2})
    assert v4["key_type"] == "ipv4_cidr" and lines(v4) == ["+ 10.0.0.0/8: 1", "+ 192.0.2.0/24: 2"]
    assert not zoo("lpm4", entries={"10.0.0.0/8": 1, "192.0.2.0/24": 2}, exclusive=True)["changed"]
    assert lines(zoo("lpm4", entries=["10.0.0.0/8"], exclusive=True)) == ["- 192.0.2.0/24"]
    v6 = zoo("lpm6", entries=["2001:db8::/32", "2001:db8:ffff::/48"])
    assert v6["key_type"] == "ipv6_cidr" and v6["added"] == 2
    assert not zoo("lpm6", entries=["2001:db8::/32", "2001:db8:ffff::/48"])["changed"]


def test_struct_key_and_value_by_field_names(zoo):
    key = {"saddr": "192.0.2.1", "dport": 22, "proto": 6}
    first = zoo("flows", entries=[{"key": key, "value": {"rate": 10, "burst": 5, "enabled": True}}])
    assert first["added"] == 1
    assert lines(first) == ["+ {saddr: 192.0.2.1, dport: 22, proto: tcp, pad: 0}: "
                            "{rate: 10, burst: 5, enabled: 1}"]
    update = zoo("flows", entries=[{"key": dict(key, proto="tcp"), "value": {"rate": 20, "burst": 5, "enabled": 1}}])
    assert lines(update) == ["~ {saddr: 192.0.2.1, dport: 22, proto: tcp, pad: 0}: {rate: 10, burst: 5, enabled: 1}"
                             " -> {rate: 20, burst: 5, enabled: 1}"]
    read = zoo("flows", return_entries=True)["entries"]
    assert read == [{"key": {"saddr": "192.0.2.1", "dport": 22, "proto": "tcp", "pad": 0},
                     "value": {"rate": 20, "burst": 5, "enabled": 1}}]


def test_array_update_and_reset(zoo):
    result = zoo("limits", entries={1: {"rate": 100, "burst": 10, "enabled": 1}})
    assert lines(result) == ["~ 1: {rate: 0, burst: 0, enabled: 0} -> {rate: 100, burst: 10, enabled: 1}"]
    assert not zoo("limits", entries={1: {"rate": 100, "burst": 10, "enabled": 1}})["changed"]
    reset = zoo("limits", entries=[1], state="absent")
    assert lines(reset) == ["- 1"] and not zoo("limits", entries=[1], state="absent")["changed"]


def test_per_cpu_array_one_value_or_one_per_cpu(zoo):
    one = zoo("pcpu_array", entries={0: 7}, return_entries=True)
    assert one["changed"]
    entry = one["entries"][0]
    assert entry["per_cpu"] == [7] * NCPU and entry["value"] == 7 * NCPU
    per_cpu = list(range(1, NCPU + 1))
    listed = zoo("pcpu_array", entries={0: per_cpu}, return_entries=True)
    assert listed["entries"][0]["per_cpu"] == per_cpu
    assert not zoo("pcpu_array", entries={0: per_cpu})["changed"]


def test_per_cpu_hash_keyed_by_port(zoo):
    result = zoo("pcpu_hash", entries={22: 1, 443: 2}, key_type="port")
    assert lines(result) == ["+ 22: [%s]" % ", ".join(["1"] * NCPU), "+ 443: [%s]" % ", ".join(["2"] * NCPU)]
    assert not zoo("pcpu_hash", entries={22: 1, 443: 2}, key_type="port")["changed"]


def test_devmap_by_interface_name(zoo):
    result = zoo("ports", entries={0: zoo.dut.ifname}, return_entries=True)
    assert result["value_type"] == "ifindex" and lines(result) == ["+ 0: %s" % zoo.dut.ifname]
    assert result["entries"] == [{"key": 0, "value": zoo.dut.ifname}]
    assert not zoo("ports", entries={0: zoo.dut.ifname})["changed"]


# ---- bad input: one sentence naming the entry, and the map untouched ----------------------

def test_malformed_address(zoo):
    zoo("hash_v4", entries=["10.0.0.1"])
    msg = zoo.fails("hash_v4", entries=["10.0.0.2", "10.0.0.300"], key_type="ipv4")
    assert msg == "entry 2: '10.0.0.300' is not an IP address; the map was not changed."


def test_cidr_with_host_bits(zoo):
    msg = zoo.fails("lpm4", entries=["10.0.0.0/8", "192.0.2.1/24"])
    assert msg.startswith("entry 2: 192.0.2.1/24 has host bits set; write the network as 192.0.2.0/24")


def test_ipv6_into_ipv4_key(zoo):
    msg = zoo.fails("hash_v4", entries=["2001:db8::1"], key_type="ipv4")
    assert "entry 1 (key '2001:db8::1'): an IPv6 address does not fit this IPv4 field" in msg


def test_value_too_big_for_its_type(zoo):
    msg = zoo.fails("limits", entries={0: {"rate": 1, "burst": 2 ** 40, "enabled": 1}})
    assert msg.startswith("entry 1 (key 0): its value: field 'burst': 1099511627776 does not fit __u32"), msg


def test_key_size_mismatch(zoo):
    msg = zoo.fails("hash_v4", entries=["2001:db8::1"], key_type="ipv6")
    assert "key_type ipv6 is 16 bytes but the map at" in msg and "has 4-byte keys" in msg


def test_unknown_and_missing_struct_fields(zoo):
    msg = zoo.fails("flows", entries=[{"key": {"saddr": "192.0.2.1", "dport": 22, "proto": 6, "port": 1},
                                       "value": {"rate": 1, "burst": 1, "enabled": 1}}])
    assert "struct flow has no field 'port'" in msg
    msg = zoo.fails("flows", entries=[{"key": {"saddr": "192.0.2.1", "proto": 6},
                                       "value": {"rate": 1, "burst": 1, "enabled": 1}}])
    assert "struct flow field 'dport' is missing" in msg


def test_map_not_found_names_the_path(zoo):
    with pytest.raises(DatapathError) as err:
        mapsync.sync(mapsync.map_path(interface=zoo.dut.ifname, name="zoo", map_name="nosuchmap"),
                     entries=["10.0.0.1"])
    assert err.value.message.startswith("no map is pinned at /sys/fs/bpf/wirespeed/%s/zoo/maps/nosuchmap"
                                        % zoo.dut.ifname)


def test_map_full(zoo):
    zoo("hash_v4", entries=["10.0.0.%d" % i for i in range(1, 6)])
    msg = zoo.fails("hash_v4", entries=["10.0.1.%d" % i for i in range(1, 5)])
    assert "max_entries 8, needed 9" in msg


def test_unknown_interface_for_a_devmap(zoo):
    msg = zoo.fails("ports", entries={0: "nosuch0"})
    assert "entry 1 (key 0): its value: interface 'nosuch0' does not exist on this host" in msg


def test_per_cpu_list_of_the_wrong_length(zoo):
    msg = zoo.fails("pcpu_array", entries={0: [1] * (NCPU + 1)})
    assert "one value or a list of %d (one per possible CPU), got a list of %d" % (NCPU, NCPU + 1) in msg


def test_kernel_refusal_half_way_puts_the_map_back(zoo):
    zoo("ports", entries={1: zoo.dut.ifname})
    # the first element is accepted, the kernel refuses an ifindex that does not exist
    msg = zoo.fails("ports", entries={0: zoo.dut.ifname, 2: 99999})
    assert msg.startswith("the kernel refused the update of") and "put back as it was" in msg


def test_long_diffs_are_summarized_with_counts(zoo):
    entries = ["10.1.%d.%d" % (i // 256, i % 256) for i in range(400)]
    result = zoo("big", entries=entries, check_mode=True)
    shown = lines(result)
    assert len(shown) == 301 and shown[0] == "+ 10.1.0.0" and shown[299] == "+ 10.1.1.43"
    assert shown[300] == "... and 100 more (400 added, 0 removed, 0 changed in all)"
    assert result["added"] == 400 and zoo.dump("big") == {}
