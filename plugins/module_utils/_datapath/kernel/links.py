"""Network interfaces through pyroute2: the rtnetlink socket (in a namespace too), names, indexes and kinds,
and the wake-up on link events the boot restore waits with.

Every netlink user of the engine (XDP, TC, the neighbour table, host facts,
the boot restore) opens its socket and looks interfaces up here.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import re
import select
import socket
import sys

from ..errors import DatapathError
from . import netns as _netns

__all__ = ["HAS_PYROUTE2", "PYROUTE2_FLOOR", "PYROUTE2_IMPORT_ERROR", "LinkEvents", "NetlinkError", "ifindex",
           "interfaces", "link_kinds", "pyroute2_problem", "version_tuple"]

# The oldest pyroute2 the engine is tested with (tests/integration/test_pyroute2_floor.py): Debian 12's
# python3-pyroute2. Keep requirements.txt and the host role's _host_pyroute2_floor (vars/main.yml) the same.
PYROUTE2_FLOOR = "0.7.2"

try:
    import pyroute2
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


def version_tuple(text: str) -> tuple:
    """(0, 7, 2) of '0.7.2', '0.7.2.post1' or '0.7.2rc1': the leading release numbers only."""
    match = re.match(r"\d+(?:\.\d+)*", str(text).strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


_VERSION = []  # pyroute2_version()'s answer, read once per process (a metadata lookup scans sys.path)


def pyroute2_version() -> str:
    """The installed pyroute2's version: its distribution metadata first (Debian's python3-pyroute2 0.7.2 says
    __version__ == 'unknown', its dist-info says 0.7.2), else its __version__."""
    if not _VERSION:
        _VERSION.append(_read_pyroute2_version())
    return _VERSION[0]


def _read_pyroute2_version() -> str:
    try:
        from importlib import metadata
        return metadata.version("pyroute2")
    except Exception:  # noqa: BLE001 - no metadata (a vendored copy): fall back to the module's own attribute
        return str(getattr(pyroute2, "__version__", None) or "unknown")


def pyroute2_problem() -> str | None:
    """One sentence when this Python's pyroute2 is missing or older than the floor, else None."""
    if not HAS_PYROUTE2:
        return ("the Python library pyroute2 is missing on this host (%s); install pyroute2 %s or newer "
                "(python3-pyroute2 on Debian 12, or pip install 'pyroute2>=%s')."
                % (PYROUTE2_IMPORT_ERROR, PYROUTE2_FLOOR, PYROUTE2_FLOOR))
    found = pyroute2_version()
    if version_tuple(found) < version_tuple(PYROUTE2_FLOOR):
        return ("pyroute2 %s of %s is older than %s, the oldest wirespeed.datapath works with; install a newer one "
                "(pip install 'pyroute2>=%s' into that Python, or run the host role with host_pyroute2_source: pip)."
                % (found, sys.executable, PYROUTE2_FLOOR, PYROUTE2_FLOOR))
    return None


def _ipr(netns=None):
    """An rtnetlink socket in this process's network namespace, or in netns (name or path; flags=0: never
    created by accident). Only the socket enters the namespace, so bpffs stays this process's."""
    problem = pyroute2_problem()
    if problem:
        raise DatapathError(problem)
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


RTMGRP_LINK = 1


class LinkEvents:
    """Wakes up when an interface of this network namespace is created, changed or deleted: a raw rtnetlink socket
    in the RTMGRP_LINK group (no pyroute2: only the wake-up is needed, callers look the interface up themselves)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, RTMGRP_LINK))
        self.sock.setblocking(False)

    def wait(self, timeout: float) -> bool:
        """Whether a link message arrived within timeout seconds; everything queued is read."""
        readable, _unused, _errors = select.select([self.sock], [], [], max(timeout, 0))
        if not readable:
            return False
        while True:
            try:
                self.sock.recv(65536)
            except BlockingIOError:
                return True
            except OSError:  # ENOBUFS: messages were lost; the caller looks again anyway
                return True

    def close(self) -> None:
        self.sock.close()
