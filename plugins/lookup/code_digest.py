# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: code_digest
author: wirespeed.datapath contributors (@wirespeed)
version_added: 0.1.0
short_description: Digest of the collection's own code, for site.yml's no-op fast path
description:
  - sha256 over the names and contents of the collection's roles, playbooks, plugins and BPF sources, read on the
    controller, so that an upgrade of the collection changes every host's intent (the filter
    P(wirespeed.datapath._intent#filter)).
  - Takes no terms.
options: {}
"""

EXAMPLES = r"""
- name: Digest the collection's code once
  ansible.builtin.set_fact:
    code: "{{ lookup('wirespeed.datapath.code_digest') }}"
  run_once: true
"""

RETURN = r"""
_raw:
  description: One sha256 hex digest.
  type: list
  elements: str
"""

from ansible.plugins.lookup import LookupBase

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _intent


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [_intent.code_digest()]
