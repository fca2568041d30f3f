"""The neighbour table through pyroute2: the MAC a host reaches an address with, on an interface.

The load balancer rewrites a packet's Ethernet destination to its backend's MAC; a backend given without one
takes it from the balancer's own neighbour table, read here (and, with probe, after one datagram to port 9
of the address has made the kernel resolve it)."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ipaddress
import socket
import time

from .links import _ipr, ifindex

# NUD states whose lladdr is usable: incomplete (1) and failed (0x20) are not
NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x80  # reachable, stale, delay, probe, permanent


def table(interface: str) -> dict:
    """{address: mac} of the usable neighbour entries on interface."""
    index = ifindex(interface)
    out = {}
    with _ipr() as ipr:
        for msg in ipr.get_neighbours(ifindex=index):
            addr, mac = msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR")
            if addr and mac and msg["state"] & NUD_USABLE:
                out[str(ipaddress.ip_address(addr))] = mac.lower()
    return out


def _probe(addresses: list) -> None:
    for addr in addresses:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(b"", (addr, 9))  # discard: makes the kernel resolve the neighbour
            except OSError:
                pass


def resolve(interface: str, addresses: list, probe: bool = True, wait: float = 1.0) -> dict:
    """{address: mac or None} for each address; with probe, unresolved ones are probed once and read again."""
    wanted = [str(ipaddress.ip_address(a)) for a in addresses]
    known = table(interface)
    missing = [a for a in wanted if a not in known]
    if missing and probe:
        _probe(missing)
        deadline = time.monotonic() + wait
        while missing and time.monotonic() < deadline:
            time.sleep(0.05)
            known = table(interface)
            missing = [a for a in wanted if a not in known]
    return {a: known.get(a) for a in wanted}
