"""Network interfaces through pyroute2: the rtnetlink socket (in a namespace too), names, indexes and kinds.

Every netlink user of the engine (XDP, TC, the neighbour table, host facts,
the boot restore) opens its socket and looks interfaces up here.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ..errors import DatapathError
from . import netns as _netns

__all__ = ["HAS_PYROUTE2", "PYROUTE2_IMPORT_ERROR", "NetlinkError", "ifindex", "interfaces", "link_kinds"]

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # reported by the module with a clear message
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

    class NetlinkError(Exception):
        """Stands in for pyroute2's exception so this module imports without pyroute2."""

        code = 0


def _ipr(netns=None):
    """An rtnetlink socket in this process's network namespace, or in netns (name or path; flags=0: never
    created by accident). Only the socket enters the namespace, so bpffs stays this process's."""
    if not HAS_PYROUTE2:
        raise DatapathError("the Python library pyroute2 is missing on this host (%s); pip install pyroute2."
                            % PYROUTE2_IMPORT_ERROR)
    if not netns:
        return IPRoute()
    where = _netns.check(netns)
    try:
        return IPRoute(netns=where, flags=0)
    except OSError as exc:
        raise DatapathError("network namespace %r cannot be entered (%s); check the netns option."
                            % (netns, exc.strerror or exc)) from exc


def ifindex(name: str, netns: str | None = None) -> int:
    """The index of interface name; a DatapathError naming it when it does not exist."""
    with _ipr(netns) as ipr:
        found = ipr.link_lookup(ifname=name)
    if not found:
        if netns:
            raise DatapathError("interface %r does not exist in network namespace %r; check the interface and "
                                "netns options." % (name, netns))
        raise DatapathError("interface %r does not exist on this host; check the interface option." % name)
    return found[0]


def interfaces(netns: str | None = None) -> dict[str, int]:
    """{name: ifindex} of every interface in this network namespace (or in netns)."""
    return {name: index for name, (index, _kind) in link_kinds(netns).items()}


def link_kinds(netns: str | None = None) -> dict[str, tuple[int, str | None]]:
    """{name: (ifindex, kind)}; kind is the rtnetlink link kind (veth, bridge, vlan...) or None for hardware."""
    with _ipr(netns) as ipr:
        out = {}
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            if link.get_attr("IFLA_IFNAME") == "lo":
                kind = "loopback"
            out[link.get_attr("IFLA_IFNAME")] = (link["index"], kind)
        return out
