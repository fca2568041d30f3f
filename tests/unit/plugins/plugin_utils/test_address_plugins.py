# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The address filters and the address_file lookup fail with their sentence once, as Ansible prints it."""

import pytest
from ansible.errors import AnsibleFilterError, AnsibleLookupError

from ansible_collections.wirespeed.datapath.plugins.filter import addresses
from ansible_collections.wirespeed.datapath.plugins.lookup.address_file import LookupModule


@pytest.mark.parametrize("entries, sentence", [
    (["192.0.2.0/24", "203.0.113.300"], "firewall_deny item 2 is '203.0.113.300', which is not an IPv4 or IPv6 "
                                        "address or CIDR; fix or remove it."),
    (["10.1.2.3/8"], "firewall_deny item 1 is '10.1.2.3/8', which has host bits set; write the network as 10.0.0.0/8."),
])
def test_filter_error_is_the_sentence_once(entries, sentence):
    with pytest.raises(AnsibleFilterError) as info:
        addresses.address_check(entries, "firewall_deny")
    assert info.value.message == sentence  # .message is what Ansible shows: the text and its causes' texts


def test_lookup_error_is_the_sentence_once(tmp_path):
    feed = tmp_path / "threats.txt"
    feed.write_text("203.0.113.7\n203.0.113.0/33\n")
    lookup = LookupModule()
    lookup.find_file_in_search_path = lambda variables, subdir, term, ignore_missing=False: term
    with pytest.raises(AnsibleLookupError) as info:
        lookup.run([str(feed)], variables={})
    assert info.value.message == ("%s line 2 is '203.0.113.0/33', which is not an IPv4 or IPv6 address or CIDR; "
                                  "fix or remove it." % feed)
