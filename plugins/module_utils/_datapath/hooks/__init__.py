"""The hook registry: every attach point by name. Adding one is a new file in hooks/ and a line here."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ..errors import DatapathError
from .base import Hook, Request, deploy, remove  # noqa: F401  (the interface callers use)
from .tc import TcHook
from .xdp import XdpHook

HOOKS = {hook.NAME: hook for hook in (XdpHook, TcHook)}


def hook_for(name: str) -> type:
    """The Hook class registered under name (a Record's `hook`, or a module's)."""
    try:
        return HOOKS[name]
    except KeyError:
        raise DatapathError("hook %r is not one this collection knows (%s); the state record was written by a newer "
                            "collection, so upgrade it." % (name, ", ".join(sorted(HOOKS)))) from None


def options(name: str) -> dict:
    """Constants a module's argument spec takes from a hook (choices, defaults)."""
    return HOOKS[name].OPTIONS
