"""XDP over rtnetlink through pyroute2: what is attached, attach, replace and detach.

Replacing a program is a single RTM_SETLINK carrying the new fd: the kernel
swaps the pointer, so there is no moment without a program. Every change we
make names the program it expects to find (XDP_FLAGS_REPLACE with
IFLA_XDP_EXPECTED_FD, or XDP_FLAGS_UPDATE_IF_NOEXIST when it expects none),
so a program someone else attached in the meantime is never clobbered.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import errno

from ..errors import DatapathError
from .links import NetlinkError, _ipr

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4

MODE_FLAGS = {"native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE, "offload": XDP_FLAGS_HW_MODE}
# IFLA_XDP_ATTACHED values as pyroute2 names them
_ATTACHED = {"xdp": "native", "xdpgeneric": "generic", "xdpoffload": "offload", "xdpmulti": "multi",
             1: "native", 2: "generic", 3: "offload", 4: "multi"}
_MODE_PROG_ID = {"native": "IFLA_XDP_DRV_PROG_ID", "generic": "IFLA_XDP_SKB_PROG_ID",
                 "offload": "IFLA_XDP_HW_PROG_ID"}


def _teach_pyroute2():
    """pyroute2 before 0.8.1 (Debian 12 ships 0.7.2) packs IFLA_XDP_FLAGS as a big-endian 16-bit number; the
    kernel reads a host-order u32 and refuses the two bytes with ERANGE ("Numerical result out of range"), so no
    attach works. Where the field is still that, make it the u32 the kernel expects (pyroute2 pull 1256)."""
    try:
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    except ImportError:
        return
    flags = ifinfmsg.xdp.xdp_flags
    if [tuple(field) for field in flags.fields] == [("value", ">H")]:
        flags.fields = [("value", "I")]


_teach_pyroute2()


def xdp_state(index: int, netns: str | None = None) -> dict:
    """{'mode': native|generic|offload|None, 'prog_id': int|None} of the interface."""
    with _ipr(netns) as ipr:
        link = ipr.get_links(index)[0]
    xdp = link.get_attr("IFLA_XDP")
    if not xdp:
        return {"mode": None, "prog_id": None}
    mode = _ATTACHED.get(xdp.get_attr("IFLA_XDP_ATTACHED"))
    if mode is None:
        return {"mode": None, "prog_id": None}
    prog_id = xdp.get_attr("IFLA_XDP_PROG_ID")
    if prog_id is None and mode in _MODE_PROG_ID:
        prog_id = xdp.get_attr(_MODE_PROG_ID[mode])
    return {"mode": mode, "prog_id": prog_id}


def _set(index, fd, flags, expected_fd=None, ifname=None, mode=None, netns=None):
    attrs = [["IFLA_XDP_FD", fd], ["IFLA_XDP_FLAGS", flags]]
    if expected_fd is not None:
        attrs.append(["IFLA_XDP_EXPECTED_FD", expected_fd])
    try:
        with _ipr(netns) as ipr:
            ipr.link("set", index=index, xdp={"attrs": attrs})
    except NetlinkError as exc:
        raise attach_error(exc, ifname or str(index), mode) from exc


def attach_error(exc: NetlinkError, ifname: str, mode: str | None) -> DatapathError:
    code = exc.code
    text = str(exc.args[1]) if len(exc.args) > 1 else ""
    if code in (errno.EOPNOTSUPP, errno.EINVAL) and mode in ("native", "offload"):
        return DatapathError("the driver of interface %r does not support XDP mode %s (%s); use mode generic or auto."
                             % (ifname, mode, text or errno.errorcode.get(code, code)))
    if code in (errno.EEXIST, errno.EBUSY):
        return DatapathError("interface %r changed while wirespeed was updating it: another XDP program is attached "
                             "(%s); inspect it with `ip link show %s` and run the task again." % (ifname, text, ifname))
    return DatapathError("attaching XDP to interface %r failed: %s (errno %d)." % (ifname, text or exc, code))


def attach(index: int, fd: int, mode: str, expected_fd: int | None = None, ifname: str | None = None,
           netns: str | None = None) -> None:
    """Attach fd in mode. expected_fd None: only if nothing is attached; else atomically replace that one."""
    flags = MODE_FLAGS[mode]
    if expected_fd is None:
        flags |= XDP_FLAGS_UPDATE_IF_NOEXIST
    else:
        flags |= XDP_FLAGS_REPLACE
    _set(index, fd, flags, expected_fd, ifname, mode, netns)


def detach(index: int, mode: str, expected_fd: int | None, ifname: str | None = None,
           netns: str | None = None) -> None:
    """Remove the program attached in mode, provided it is still expected_fd's program."""
    _set(index, -1, MODE_FLAGS[mode] | XDP_FLAGS_REPLACE, expected_fd, ifname, mode, netns)
