"""Network namespaces: where a program's interface lives, and the key that keeps it apart from its namesakes.

An interface inside another network namespace is reached by netlink only:
pyroute2 opens the rtnetlink socket inside the namespace (setns in a short
child, the socket handed back), while this process keeps its own mount
namespace, so pins stay in the caller's bpffs (`ip netns exec` would remount
/sys and hide it). BPF program and map fds are not bound to a namespace.

The engine keeps records and pins under a key: the interface name in the
host's namespace, `<label>:<interface>` in another one (`:` cannot be part
of an interface name, so no key of a namespace meets a host interface's).
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
from collections.abc import Iterator

from ..errors import DatapathError

RUN_NETNS = "/run/netns"
_NAME = re.compile(r"^[^/\0]{1,255}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")  # bpffs takes no dots in names


def path(netns: str | None) -> str | None:
    """The file of a namespace given by name (under /run/netns) or by absolute path; None for the host's."""
    if not netns:
        return None
    if netns.startswith("/"):
        return os.path.normpath(netns)
    if not _NAME.match(netns) or netns in (".", ".."):
        raise DatapathError("netns %r is neither a name under %s nor an absolute path; give one of them."
                            % (netns, RUN_NETNS))
    return os.path.join(RUN_NETNS, netns)


def label(netns: str | None) -> str | None:
    """The short name of a namespace in keys and bpffs folders: its name, or its path made safe."""
    where = path(netns)
    if where is None:
        return None
    if os.path.dirname(where) == RUN_NETNS:
        return _UNSAFE.sub("_", os.path.basename(where))
    return _UNSAFE.sub("_", where.strip("/"))


def key(interface: str, netns: str | None) -> str:
    """The engine's name of an interface: itself in the host's namespace, `<label>:<interface>` elsewhere."""
    found = label(netns)
    return interface if found is None else "%s:%s" % (found, interface)


def split(interface_key: str) -> tuple[str | None, str]:
    """(namespace label or None, interface name) of a key."""
    if ":" in interface_key:
        found, ifname = interface_key.rsplit(":", 1)
        return found, ifname
    return None, interface_key


def check(netns: str | None) -> str | None:
    """The namespace's path, or one sentence when it does not exist."""
    where = path(netns)
    if where is not None and not os.path.exists(where):
        raise DatapathError("network namespace %r does not exist on this host (no %s); create it first or check "
                            "the netns option." % (netns, where))
    return where


CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def entered(netns: str | None) -> Iterator[None]:
    """Run the block with this thread in netns (nothing for None). For map writes that the kernel resolves in
    the writer's namespace: a DEVMAP takes interface indexes of the namespace of whoever updates it. Only the
    network namespace changes; the mount namespace, and with it bpffs, stays."""
    if not netns:
        yield
        return
    where = check(netns)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        there = os.open(where, os.O_RDONLY)
        try:
            if libc.setns(there, CLONE_NEWNET) != 0:
                raise DatapathError("network namespace %r cannot be entered (%s); check the netns option."
                                    % (netns, os.strerror(ctypes.get_errno())))
        finally:
            os.close(there)
        try:
            yield
        finally:
            libc.setns(here, CLONE_NEWNET)
    finally:
        os.close(here)
