# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make before break, the pure part: which maps can be carried to a new definition, how their values convert,
what a new capacity refuses, and map_sizes checking; no root, no kernel."""
import struct

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import carry
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import maps
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.loaded import check_sizes

Layout = carry.Layout


def q(*values):
    return struct.pack("<%dQ" % len(values), *values)


def test_hash_to_percpu_hash_puts_the_count_on_the_first_cpu():
    old, new = Layout(maps.HASH, 4, 8, 16), Layout(maps.PERCPU_HASH, 4, 8, 16, ncpu=3)
    assert carry.convert_values(old, new, q(5, 7), 2) == q(5, 0, 0) + q(7, 0, 0)


def test_percpu_hash_to_hash_adds_up_each_lane():
    old, new = Layout(maps.PERCPU_HASH, 4, 16, 16, ncpu=2), Layout(maps.HASH, 4, 16, 16)
    raw = q(1, 10) + q(2, 20)  # one entry: CPU 0 then CPU 1, two u64 lanes each
    assert carry.convert_values(old, new, raw, 1) == q(3, 30)


def test_percpu_value_not_of_whole_lanes_takes_the_first_cpu_padded_copy():
    old, new = Layout(maps.PERCPU_HASH, 4, 4, 16, ncpu=2), Layout(maps.HASH, 4, 4, 16)
    raw = b"\1\2\3\4" + bytes(4) + b"\5\6\7\x08" + bytes(4)
    assert carry.convert_values(old, new, raw, 1) == b"\1\2\3\4"


def test_grown_and_shrunk_values_keep_their_leading_bytes():
    assert carry.convert_values(Layout(maps.HASH, 4, 8, 4), Layout(maps.HASH, 4, 16, 4), q(9), 1) == q(9, 0)
    assert carry.convert_values(Layout(maps.HASH, 4, 16, 4), Layout(maps.HASH, 4, 8, 4), q(9, 8), 1) == q(9)


def test_same_layout_other_capacity_is_a_plain_copy():
    raw = q(1, 2, 3)
    assert carry.convert_values(Layout(maps.HASH, 4, 8, 4), Layout(maps.HASH, 4, 8, 1 << 20), raw, 3) is raw


@pytest.mark.parametrize("old,new,reason", [
    (Layout(maps.HASH, 4, 8, 4), Layout(maps.PERCPU_HASH, 4, 8, 4, 2), None),
    (Layout(maps.HASH, 4, 8, 4), Layout(maps.HASH, 16, 8, 4), "its key changed from 4 to 16 bytes"),
    (Layout(maps.HASH, 8, 8, 4), Layout(maps.LPM_TRIE, 8, 8, 4), "prefix trie"),
    (Layout(maps.HASH, 4, 8, 4), Layout(maps.ARRAY, 4, 8, 4), "array and a hash"),
    (Layout(27, 0, 0, 4096), Layout(27, 0, 0, 8192), None),  # a ring buffer: nothing to carry, nothing refused
])
def test_which_definitions_can_be_carried(old, new, reason):
    got = carry.why_not(old, new)
    assert (got is None) if reason is None else (reason in got)


def test_a_capacity_below_the_entries_is_refused_with_both_numbers():
    with pytest.raises(DatapathError) as err:
        carry.check_fits("deny_v4", Layout(maps.HASH, 4, 8, 2), [b"a", b"b", b"c"], "copied from the live version")
    assert "map deny_v4 would hold 3 entries" in err.value.message and "max_entries is 2" in err.value.message
    carry.check_fits("deny_v4", Layout(maps.HASH, 4, 8, 3), [b"a", b"b", b"c"], "copied")


def test_an_array_keeps_set_indexes_and_refuses_a_size_that_cuts_one_off():
    old, new = Layout(maps.ARRAY, 4, 8, 8), Layout(maps.ARRAY, 4, 8, 4)
    keys = [struct.pack("<I", i) for i in range(6)]
    values = q(0, 1, 0, 0, 0, 0)
    got_keys, got_values = carry.carried(old, new, keys, values)
    assert got_keys == [struct.pack("<I", 1)] and got_values == q(1)
    carry.check_fits("table", new, got_keys, "copied")
    with pytest.raises(DatapathError, match="1 set entries lie past its new max_entries 4"):
        carry.check_fits("table", new, [struct.pack("<I", 5)], "copied")


@pytest.mark.parametrize("sizes,ok", [
    ({"deny_v4": 262144}, True), ({"deny_v4": "262144"}, True), ({"deny_v4": 0}, False),
    ({"deny_v4": -1}, False), ({"deny_v4": "lots"}, False), ({"deny_v4": True}, False), ({"deny_v4": 1 << 31}, False),
])
def test_map_sizes_are_whole_positive_numbers(sizes, ok):
    if ok:
        assert check_sizes(sizes) == {"deny_v4": 262144}
    else:
        with pytest.raises(DatapathError, match="map_sizes: deny_v4 is"):
            check_sizes(sizes)
