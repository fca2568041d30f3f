# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: address_file
author: wirespeed.datapath contributors (@wirespeed)
version_added: 0.1.0
short_description: Read address and CIDR feeds on the controller, checked line by line
description:
  - Reads each file on the controller; one IPv4 or IPv6 address or CIDR per line, blank lines and text
    after C(#) ignored. Returns every entry, in canonical form, as one flat list.
  - A line that is not an address or CIDR, or a CIDR with host bits set, fails the lookup with the file
    name and line number, before anything reaches a host.
  - Built for threat feeds of 100,000 lines and more.
options:
  _terms:
    description: Paths of the files, relative to the playbook's or role's C(files) directory or absolute.
    required: true
    type: list
    elements: path
"""

EXAMPLES = r"""
- name: Deny a threat feed on eth0
  ansible.builtin.set_fact:
    feed: "{{ lookup('wirespeed.datapath.address_file', 'feeds/threats.txt', wantlist=true) }}"
"""

RETURN = r"""
_raw:
  description: The addresses and CIDRs of every file, as canonical strings (C(192.0.2.0/24), C(203.0.113.7/32)).
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _addresses


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        out = []
        for term in terms:
            path = self.find_file_in_search_path(variables, "files", term, ignore_missing=True) or term
            try:
                out.extend(str(n) for n in _addresses.read_file(path))
            except _addresses.AddressError as exc:
                raise AnsibleLookupError(str(exc)) from None  # the sentence once, without its causes appended
        return out
