# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: address_feed
author: wirespeed.datapath contributors (@wirespeed)
version_added: 0.2.0
short_description: A threat feed read, checked and packed once per run on the controller, as a small handle
description:
  - Reads the files as P(wirespeed.datapath.address_file#lookup) does (one IPv4 or IPv6 address or CIDR per line,
    blank lines and text after C(#) ignored; a bad line fails the lookup naming the file and line), splits the
    entries into single addresses and networks by family, and packs each part for
    M(wirespeed.datapath.datapath_apply) as the map's own key bytes (4 bytes an IPv4 address, 16 an IPv6 one, the
    LPM trie layout for networks), sorted, each once, compressed, with its sha256; the host writes them to the map
    without parsing an entry.
  - The work is done once per feed content, not once per host; the result is kept in the controller's cache
    folder (C($XDG_CACHE_HOME/wirespeed.datapath/feeds), or C($WIRESPEED_FEED_CACHE)), keyed by the sha256 of the
    files, and the hosts of a run share it.
  - Returns a handle, C({feed, files, count, counts}), that a map of M(wirespeed.datapath.datapath_apply) names as
    C(feed) together with a C(part) (C(v4), C(v6), C(net_v4), C(net_v6)).
  - With O(covering), returns instead the feed's entries that cover any of those addresses or networks, each as
    C(<entry> covers <address>).
options:
  _terms:
    description: Paths of the files, relative to the playbook's or role's C(files) directory or absolute.
    required: true
    type: list
    elements: path
  covering:
    description: Addresses or networks to look for in the feed.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Deny a threat feed on eth0 and eth1, the feed read once for the whole fleet
  wirespeed.datapath.datapath_apply:
    programs:
      - name: firewall
        interfaces: [eth0, eth1]
        src: firewall.bpf.c
        maps:
          - {map: deny_v4, key_type: ipv4, feed: "{{ feed | combine({'part': 'v4'}) }}", exclusive: true}
  vars:
    feed: "{{ lookup('wirespeed.datapath.address_feed', 'feeds/threats.txt') }}"
"""

RETURN = r"""
_raw:
  description: The feed's handle (one dict), or with O(covering) the covering entries.
  type: list
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _addresses, _feeds


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        paths = [self.find_file_in_search_path(variables, "files", term, ignore_missing=True) or term
                 for term in terms]
        covering = self.get_option("covering")
        try:
            if covering is not None:
                return _feeds.covering(paths, covering)
            return [_feeds.handle(paths)]
        except (_addresses.AddressError, _feeds.FeedError) as exc:
            raise AnsibleLookupError(str(exc)) from None  # the sentence once, without its causes appended
