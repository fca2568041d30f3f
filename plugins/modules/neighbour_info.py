#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: neighbour_info
short_description: The MAC addresses a host reaches some addresses with, from its neighbour table
version_added: 0.1.0
description:
  - Reads the neighbour (ARP and NDP) table of one interface and returns the MAC of each address asked for,
    or null where the table has no usable entry (incomplete or failed).
  - With O(probe), an address without an entry gets one empty UDP datagram to port 9 (discard), which makes
    the kernel resolve it, and the table is read again for up to a second.
  - The load_balancer role uses it for backends given without a MAC, and with O(routed) for the next hop of
    encapsulated backends.
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - pyroute2 on the managed host
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  interface:
    description: Interface whose neighbour table is read.
    type: str
    required: true
  addresses:
    description: IPv4 or IPv6 addresses to look up.
    type: list
    elements: str
    required: true
  probe:
    description: Send one datagram to an address without an entry, so that the kernel resolves it, then read again.
    type: bool
    default: true
  routed:
    description:
      - Addresses reached through their route (the load balancer's encapsulated backends); each gets the MAC
        of its route's next hop on O(interface) (its own when it is on-link).
      - An address without a route, or routed through another interface, fails the task with one sentence
        naming it.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.module
"""

EXAMPLES = r"""
- name: MACs of the backends
  wirespeed.datapath.neighbour_info:
    interface: eth0
    addresses: [198.51.100.11, 198.51.100.12]
  register: backend_macs
"""

RETURN = r"""
macs:
  description: Each address asked for, to its MAC (lower case) or null.
  returned: success
  type: dict
  sample: {198.51.100.11: "02:00:5e:00:53:0b", 198.51.100.12: null}
"""

from ansible_collections.wirespeed.datapath.plugins.module_utils._base import DatapathModule
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import neigh

ARGUMENT_SPEC = dict(
    interface=dict(type="str", required=True),
    addresses=dict(type="list", elements="str", required=True),
    probe=dict(type="bool", default=True),
    routed=dict(type="list", elements="str", default=[]),
)


def run(params, check_mode, diff_mode):
    try:
        macs = neigh.resolve(params["interface"], params["addresses"], probe=params["probe"])
        if params["routed"]:
            macs.update(neigh.resolve_routed(params["interface"], params["routed"], probe=params["probe"]))
    except ValueError as exc:
        raise DatapathError("addresses holds something that is not an IP address (%s); fix it." % exc) from None
    return {"changed": False, "macs": macs}


def main():
    DatapathModule(ARGUMENT_SPEC).run(run)


if __name__ == "__main__":
    main()
