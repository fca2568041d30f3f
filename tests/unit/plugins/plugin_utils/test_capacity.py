# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sizing rule of a role's list maps: headroom over the entries, a floor, or an explicit capacity."""

import pytest

from ansible_collections.wirespeed.datapath.plugins.filter.addresses import map_capacity
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _capacity as c


@pytest.mark.parametrize("count,floor,size", [
    (0, 131072, 131072),  # nothing: the size compiled in
    (100000, 131072, 131072),  # 125,000 with headroom: fits the floor, the map stays as it is
    (104857, 131072, 131072),  # the most the floor holds with 25% to spare
    (104858, 131072, 262144),
    (300000, 131072, 524288),
    (1000000, 131072, 2097152),
    (10, 16, 16),
    (13, 16, 32),  # 13 * 1.25 = 16.25: the next power of two above it
])
def test_from_entries_is_the_next_power_of_two_with_a_quarter_to_spare(count, floor, size):
    assert c.from_entries(count, floor) == size
    assert size >= count * 1.25 and size >= floor


def test_an_explicit_capacity_is_taken_as_is_and_refuses_a_larger_list():
    assert c.capacity(1000, 131072, 4096, "firewall_capacity") == 4096  # below the floor too: the operator's call
    with pytest.raises(c.CapacityError) as err:
        c.capacity(300001, 131072, 262144, "firewall_capacity", "IPv4 addresses")
    assert str(err.value).startswith("the lists give 300001 IPv4 addresses, more than firewall_capacity 262144; "
                                     "raise firewall_capacity")
    with pytest.raises(c.CapacityError, match="firewall_capacity is -1"):
        c.capacity(1, 16, -1, "firewall_capacity")


def test_the_filter_turns_the_refusal_into_one_sentence():
    from ansible.errors import AnsibleFilterError
    assert map_capacity("100000", 131072, "0") == 131072  # templated values arrive as strings
    with pytest.raises(AnsibleFilterError, match="more than firewall_net_capacity 8"):
        map_capacity(9, 16384, 8, "firewall_net_capacity", "IPv4 networks")
