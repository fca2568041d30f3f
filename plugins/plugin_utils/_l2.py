# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The l2_forwarder role's inputs, checked, and its plan from what `ip -j` reports on the host (pure)."""

from __future__ import annotations

import re

from ansible_collections.wirespeed.datapath.plugins.plugin_utils._input import InputError

L2Error = InputError  # the filters' one input error (_input.py), under the name the l2 checks use
_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")


def mac(value: object, variable: str) -> str:
    """A MAC as aa:bb:cc:dd:ee:ff; fails naming the variable and the value."""
    text = str(value).strip().lower()
    if not _MAC.match(text):
        raise L2Error("%s holds %r, which is not a MAC address like aa:bb:cc:dd:ee:ff; fix that entry."
                      % (variable, value))
    return text.replace("-", ":")


def static(entries: object, ports: list, variable: str = "l2_forwarder_static") -> dict[str, str]:
    """{mac: port} from the static table ({mac: interface}, or a list of {mac, interface}); each MAC parsed,
    each interface one of the ports."""
    if not entries:
        return {}
    if isinstance(entries, dict):
        items = list(entries.items())
    elif isinstance(entries, list) and all(isinstance(e, dict) for e in entries):
        items = [(e.get("mac"), e.get("interface")) for e in entries]
    else:
        raise L2Error("%s must map MAC addresses to interfaces (aa:bb:cc:dd:ee:ff: eth1), not %r."
                      % (variable, entries))
    out = {}
    for given, port in items:
        address = mac(given, variable)
        if port not in ports:
            raise L2Error("%s sends %s to %r, which is not among l2_forwarder_ports (%s); add the interface to "
                          "the ports or fix the entry." % (variable, address, port, ", ".join(map(str, ports))))
        out[address] = port
    return out


def ports(value: object, management: str | None, variable: str = "l2_forwarder_ports") -> list[str]:
    """The ports, checked: names, no duplicates, never the interface carrying Ansible's SSH connection."""
    if not isinstance(value, list) or not value or not all(isinstance(p, str) and p for p in value):
        raise L2Error("%s must be a list of interface names, not %r." % (variable, value))
    if len(set(value)) != len(value):
        raise L2Error("%s names %s twice; give each port once." % (
            variable, next(p for p in value if value.count(p) > 1)))
    if len(value) < 2:
        raise L2Error("%s names only %s; a forwarder needs two ports or more." % (variable, value[0]))
    if management and management in value:
        raise L2Error("%s names %s, the interface that carries Ansible's SSH connection to this host; forwarding "
                      "its frames would cut that connection, so take it out of the ports." % (variable, management))
    return list(value)


def plan(port_names: list, static_table: dict, links: list, nsids: list, peer_links: dict,
         neighbours: list | None = None, fdb: list | None = None) -> dict:
    """What the role deploys, from `ip -j -d link show` (links), `ip -j netns list-id` (nsids), `ip -n NS -j link
    show` per namespace holding a peer (peer_links {ns: links}), `ip -j neigh show` and `bridge -j fdb show`:

        ports    {port: port} for the devmap (names: the module resolves their ifindexes)
        fdb      {mac: port, or 0 for the ports' own MACs (the host's: passed to its stack)}
        peers    [{interface, netns (None: the host's namespace), port}] far ends of veth ports
        learned  {mac: port} the table learned (far ends' MACs, neighbours, bridge FDB), before static entries
    """
    by_name = {link.get("ifname"): link for link in links}
    names_by_nsid = {entry.get("nsid"): entry.get("name") for entry in nsids}
    peers, learned, own = [], {}, {}
    for port in port_names:
        link = by_name.get(port) or {}
        own[str(link.get("address", "")).lower()] = port
        if (link.get("linkinfo") or {}).get("info_kind") != "veth":
            continue
        nsid = link.get("link_netnsid")
        if nsid is None:
            peer = next((x for x in links if x.get("ifindex") == link.get("link_index")), None)
            netns = None
        else:
            netns = names_by_nsid.get(nsid)
            if netns is None:
                raise L2Error("l2_forwarder_ports names %s, whose veth peer is in a network namespace without a "
                              "name under /run/netns (nsid %s); name it (ip netns attach NAME PID) so the role can "
                              "attach the peer's XDP program there." % (port, nsid))
            peer = next((x for x in peer_links.get(netns, []) if x.get("ifindex") == link.get("link_index")), None)
        if peer is None:
            raise L2Error("the veth peer of %s (l2_forwarder_ports) was not found; is the pair half deleted?"
                          % port)
        peers.append({"interface": peer["ifname"], "netns": netns, "port": port})
        if peer.get("address"):
            learned[str(peer["address"]).lower()] = port
    for entry in neighbours or []:
        address = str(entry.get("lladdr") or "").lower()
        if entry.get("dev") in port_names and _MAC.match(address):
            learned.setdefault(address, entry["dev"])
    for entry in fdb or []:
        address = str(entry.get("mac") or "").lower()
        flags = set(entry.get("flags") or []) | {entry.get("state")}
        if entry.get("ifname") in port_names and _MAC.match(address) and not flags & {"permanent", "self"}:
            learned.setdefault(address, entry["ifname"])
    table = {address: 0 for address in own if _MAC.match(address)}
    table.update(learned)
    table.update(static_table)
    return {"ports": {p: p for p in port_names}, "fdb": table, "peers": peers, "learned": learned}
