#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bpf_map_entry
short_description: Typed, bulk and exclusive contents of pinned BPF maps
version_added: 0.1.0
description:
  - Makes a pinned BPF map hold the given entries, written as people write them (C(203.0.113.7),
    C(2001:db8::/32), C(22), C(tcp), C(aa:bb:cc:dd:ee:ff), C(eth1), or a dict of struct fields), and shows
    under C(--diff) exactly which entries would be added (C(+)), removed (C(-)) or changed (C(~)).
  - Types come from O(key_type) and O(value_type), else from the map's BTF, else from the form of the
    entries (addresses and CIDRs into 4-, 16-, 8- and 20-byte keys).
  - C(proto_port) is a port rule as the firewall's C(deny_ports) LPM trie keeps it, written C(tcp/8080)
    (one port) or C(icmp) (the whole protocol).
  - Every entry is parsed before the map is touched; a bad entry fails the task naming it. If the
    kernel refuses half-way (map full, out of memory) the map is put back to what it held.
  - A key given without a value keeps its current value (new keys get zeros), so re-running a blocklist
    never resets its drop counters.
  - Uses the kernel's batch operations where the map type has them, element by element otherwise.
  - Fills the maps of XDP and TC programs alike. Its first name, C(wirespeed.datapath.xdp_map_entry), stays
    an alias, so existing playbooks keep working.
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - libbpf 1.x on the managed host
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  path:
    description: Pinned path of the map. Alternative to O(interface), O(name) and O(map).
    type: path
  interface:
    description: Interface the program owning the map was deployed on.
    type: str
  netns:
    description:
      - Network namespace of O(interface), for a program deployed with
        O(wirespeed.datapath.xdp_program#module:netns) (a name under C(/run/netns) or a path).
      - The maps are written from inside that namespace, so interface names (type C(ifindex)) and the interface
        indexes a C(DEVMAP) takes mean the namespace's interfaces.
    type: str
    version_added: 0.1.0
  name:
    description: Name the program was deployed under (its O(wirespeed.datapath.xdp_program#module:name)).
    type: str
  map:
    description: Name of the map in the program.
    type: str
  key:
    description: One key. Use O(entries) for several.
    type: raw
  value:
    description:
      - Value for O(key). Omitted, an existing key keeps its value and a new key gets zeros.
      - For per-CPU maps, one value for every CPU or a list with one value per possible CPU.
    type: raw
  entries:
    description:
      - Several entries, as a list of C({key, value}) dicts, a dict of key to value, or a plain list of keys.
    type: raw
  state:
    description: C(present) writes the entries; C(absent) removes them (array maps reset them to zero).
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description: With O(state=present), remove every entry that is not listed, so the map holds exactly these.
    type: bool
    default: false
  key_type:
    description: Type of the keys, for maps without BTF or where the BTF type is ambiguous.
    type: str
    choices: [be16, be32, bool, hex, ifindex, ipv4, ipv4_cidr, ipv6, ipv6_cidr, mac, port, proto,
              proto_port, s16, s32, s64, s8, u16, u32, u64, u8]
  value_type:
    description: Type of the values (same choices as O(key_type)).
    type: str
    choices: [be16, be32, bool, hex, ifindex, ipv4, ipv4_cidr, ipv6, ipv6_cidr, mac, port, proto,
              proto_port, s16, s32, s64, s8, u16, u32, u64, u8]
  return_entries:
    description: Return the map's entries after the task, decoded like the input (per-CPU values summed).
    type: bool
    default: false
  packed:
    description:
      - The values of a run of array entries, from O(packed_offset) on, as their bytes back to back in base64
        (for the load balancer's Maglev tables, 65537 values each, where a list of entries would be megabytes
        of JSON). Entries that already hold their value are left alone, so a second run changes nothing, and
        the diff counts the entries that change, by old and new value.
      - Only for array maps; not together with O(entries), O(key), O(exclusive) or O(maps).
    type: str
    version_added: 0.1.0
  packed_offset:
    description: Index of the first entry O(packed) writes.
    type: int
    default: 0
    version_added: 0.1.0
  packed_count:
    description:
      - The number of entries the run covers, when more than O(packed) holds; the entries after its values are set
        to zero (a table that became smaller, the tables of services that were removed). Default is as many as
        O(packed) holds.
    type: int
    version_added: 0.1.0
  packed_digest:
    description:
      - The first hex digits of the sha256 of the bytes of O(packed). A mismatch fails the task before anything
        is written, and the map is read back and checked against it after writing.
    type: str
    version_added: 0.1.0
  maps:
    description:
      - Several maps of the program named by O(interface) and O(name), synced in one task instead of one
        task per map. Every entry of every map is checked before any map changes, and a kernel refusal in
        one map puts back the maps already written.
      - Not together with O(map), O(path), O(key), O(entries) or O(return_entries).
    type: list
    elements: dict
    version_added: 0.1.0
    suboptions:
      map:
        description: Name of the map in the program.
        type: str
        required: true
      entries:
        description: Its entries, in any form O(entries) takes.
        type: raw
      key_type:
        description: As O(key_type).
        type: str
        choices: [be16, be32, bool, hex, ifindex, ipv4, ipv4_cidr, ipv6, ipv6_cidr, mac, port, proto,
                  proto_port, s16, s32, s64, s8, u16, u32, u64, u8]
      value_type:
        description: As O(value_type).
        type: str
        choices: [be16, be32, bool, hex, ifindex, ipv4, ipv4_cidr, ipv6, ipv6_cidr, mac, port, proto,
                  proto_port, s16, s32, s64, s8, u16, u32, u64, u8]
      exclusive:
        description: As O(exclusive).
        type: bool
        default: false
      state:
        description: As O(state).
        type: str
        choices: [present, absent]
        default: present
      allow_empty:
        description:
          - With O(maps[].exclusive), whether entries that are none may empty a map that holds entries. The maps
            of a task that set C(false) count as one list (a firewall's deny lists of addresses and networks):
            a sync that would take all of them down to none while they hold entries fails, naming the maps and
            how many entries they hold, and no map changes. A list fed from a download that came back empty or
            cut short must not silently become empty; one of them emptied while another keeps entries is fine.
        type: bool
        default: true
        version_added: 0.3.0
      allow_empty_var:
        description:
          - The variable the refusal of O(maps[].allow_empty) tells the operator to set (a role's own, such
            as C(firewall_allow_empty)). Default C(allow_empty).
        type: str
        version_added: 0.3.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.module
  - wirespeed.datapath.program.paths
seealso:
  - module: wirespeed.datapath.xdp_program
"""

EXAMPLES = r"""
- name: Block the addresses of a threat feed, and only those
  wirespeed.datapath.bpf_map_entry:
    interface: eth0
    name: blocklist
    map: blocklist
    key_type: ipv4
    entries: "{{ lookup('ansible.builtin.file', 'feed.txt').splitlines() }}"
    exclusive: true

- name: Allow two networks (an LPM trie)
  wirespeed.datapath.bpf_map_entry:
    path: /sys/fs/bpf/wirespeed/eth0/firewall/maps/allow_v6
    entries: ["2001:db8::/32", "2001:db8:ffff::/48"]

- name: Port limits, one value each
  wirespeed.datapath.bpf_map_entry:
    interface: eth0
    name: limiter
    map: limits
    key_type: port
    entries:
      22: 5
      443: 100

- name: Every map of the firewall on eth0 in one task
  wirespeed.datapath.bpf_map_entry:
    interface: eth0
    name: firewall
    maps:
      - {map: deny_v4, key_type: ipv4, entries: [203.0.113.7], exclusive: true}
      - {map: deny_net_v4, entries: [192.0.2.0/24], exclusive: true}
      - {map: deny_ports, entries: [udp/7001], exclusive: true}

- name: Read the drop counters
  wirespeed.datapath.bpf_map_entry:
    interface: eth0
    name: blocklist
    map: blocklist
    key_type: ipv4
    return_entries: true
  register: blocked
"""

RETURN = r"""
pinned:
  description:
    - False in check mode when the map is not pinned yet (its program is itself only previewed by an earlier
      task of the run); the entries are then shown as given. Absent otherwise.
  returned: check mode, when the map is not pinned yet
  type: bool
msg:
  description: In check mode, which maps are not pinned yet (one line for the task, not a warning).
  returned: check mode, when a map is not pinned yet
  type: str
added:
  description: Number of entries added (or that would be in check mode).
  returned: always
  type: int
removed:
  description: Number of entries removed.
  returned: always
  type: int
packed_count:
  description: Number of entries the run covers (O(packed_count), else as many as O(packed) holds).
  returned: with O(packed)
  type: int
packed_digest:
  description: The first 16 hex digits of the sha256 of the values of O(packed).
  returned: with O(packed)
  type: str
updated:
  description: Number of entries whose value changed.
  returned: always
  type: int
path:
  description: Pinned path of the map.
  returned: always
  type: str
map_type:
  description: Kernel map type, such as hash, lpm_trie or percpu_array.
  returned: always
  type: str
key_type:
  description: Type used for the keys.
  returned: always
  type: str
value_type:
  description: Type used for the values.
  returned: always
  type: str
entries:
  description: The map's entries after the task, each with key and value (and per_cpu for per-CPU maps).
  returned: when return_entries is true
  type: list
  elements: dict
maps:
  description: With O(maps), the result of each map by name (added, removed, updated, path, map_type, key_type,
    value_type).
  returned: when maps is given
  type: dict
  sample: {"deny_v4": {"added": 1, "removed": 0, "updated": 0, "changed": true, "map_type": "hash"}}
detail:
  description: Compiler output, the tail of the verifier log or the kernel's words, when the task failed on one of them.
  returned: failure, when there is such output
  type: str
detail_lines:
  description: The same as RV(detail), one line per list item, for reading in the task output.
  returned: failure, when there is such output
  type: list
  elements: str
error_code:
  description:
    - A stable name of the failure for playbooks to branch on, such as C(clang_missing).
  returned: failure, for failures that have a name
  type: str
  sample: clang_missing
"""

from ansible_collections.wirespeed.datapath.plugins.module_utils._base import PATHS_ARGUMENT_SPEC, DatapathModule
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import netns
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types.codecs import TYPE_NAMES

ARGUMENT_SPEC = dict(
    PATHS_ARGUMENT_SPEC,
    path=dict(type="path"),
    interface=dict(type="str"),
    netns=dict(type="str"),
    name=dict(type="str"),
    map=dict(type="str"),
    key=dict(type="raw", no_log=False),
    value=dict(type="raw"),
    entries=dict(type="raw"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    exclusive=dict(type="bool", default=False),
    key_type=dict(type="str", choices=TYPE_NAMES, no_log=False),
    value_type=dict(type="str", choices=TYPE_NAMES),
    return_entries=dict(type="bool", default=False),
    packed=dict(type="str"),
    packed_offset=dict(type="int", default=0),
    packed_digest=dict(type="str"),
    packed_count=dict(type="int"),
    maps=dict(type="list", elements="dict", options=dict(
        map=dict(type="str", required=True),
        entries=dict(type="raw"),
        key_type=dict(type="str", choices=TYPE_NAMES, no_log=False),
        value_type=dict(type="str", choices=TYPE_NAMES),
        exclusive=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        allow_empty=dict(type="bool", default=True),
        allow_empty_var=dict(type="str"),
    )),
)


def run(params, check_mode, diff_mode):
    if params["netns"]:  # the program's pins are under the key of the interface in its namespace
        params = dict(params, interface=netns.key(params["interface"], params["netns"]))
    with netns.entered(params["netns"]):
        return _run(params, check_mode, diff_mode)


def _run(params, check_mode, diff_mode):
    if params["maps"] is not None:
        return mapsync.sync_all(params["maps"], interface=params["interface"], name=params["name"],
                                bpffs_path=params["bpffs"], check_mode=check_mode, diff=diff_mode,
                                state_dir=params["state_dir"])
    if not params["map"] and not params["path"]:
        raise DatapathError("name the map with map (or path), or give several with maps.")
    path = mapsync.map_path(params["path"], interface=params["interface"], name=params["name"],
                            map_name=params["map"], bpffs_path=params["bpffs"])
    if params["packed"] is not None:
        return mapsync.sync_packed(path, params["packed"], params["packed_offset"], params["packed_digest"],
                                   count=params["packed_count"], check_mode=check_mode, diff=diff_mode,
                                   state_dir=params["state_dir"])
    return mapsync.sync(path, key=params["key"], value=params["value"], entries=params["entries"],
                        state=params["state"], exclusive=params["exclusive"], key_type=params["key_type"],
                        value_type=params["value_type"], check_mode=check_mode,
                        return_entries=params["return_entries"], diff=diff_mode, state_dir=params["state_dir"])


def main():
    DatapathModule(
        ARGUMENT_SPEC,
        mutually_exclusive=[("path", "interface"), ("key", "entries"), ("maps", "map"), ("maps", "key"),
                            ("maps", "entries"), ("maps", "return_entries"),
                            ("packed", "entries"), ("packed", "key"), ("packed", "maps"), ("packed", "exclusive")],
        required_together=[("interface", "name")],
        required_one_of=[("path", "interface")],
        required_by={"maps": ("interface", "name"), "map": ("interface", "name"), "netns": ("interface", "name")},
    ).run(run)


if __name__ == "__main__":
    main()
