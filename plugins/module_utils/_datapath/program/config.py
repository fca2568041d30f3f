"""Load-time configuration: `config` values written into an object's `.rodata` through the BTF codecs."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ctypes

from ..errors import DatapathError
from ..types.btf import Unsupported
from .bpf_object import BpfObject

RESERVED_PREFIX = "ws_chain"  # globals the engine sets itself (the chain slot)


def settable(obj: BpfObject) -> dict:
    """{name: (offset, Codec)} of the `const volatile` globals of an open BpfObject."""
    ptr, _size = obj.rodata()
    if ptr is None:
        return {}
    with obj.btf() as btf:
        return btf.section_vars(".rodata")


def write_config(obj: BpfObject, config: dict, internal: dict | None = None) -> None:
    """Write config (the operator's values) and internal (the engine's) into obj's `.rodata` before load."""
    config = dict(config or {})
    internal = dict(internal or {})
    for key in config:
        if key.startswith(RESERVED_PREFIX):
            raise DatapathError("config key %r is reserved: wirespeed sets it itself; remove it from config." % key)
    variables = settable(obj)
    unknown = sorted(k for k in config if k not in variables)
    if unknown:
        known = ", ".join(sorted(k for k in variables if not k.startswith(RESERVED_PREFIX))) or "none"
        raise DatapathError("config key %r is not a const volatile global in %s (settable here: %s)."
                            % (unknown[0], obj.path, known))
    values = dict(config)
    values.update({k: v for k, v in internal.items() if k in variables})
    if not values:
        return
    ptr, _size = obj.rodata()
    for key in sorted(values):
        offset, codec = variables[key]
        if isinstance(codec, Unsupported):
            raise DatapathError("config key %r has C type %s, which config cannot set; use an integer, bool, "
                                "enum, integer array or char array global." % (key, codec.name))
        try:
            raw = codec.encode(values[key])
        except (ValueError, TypeError, OverflowError) as exc:
            raise DatapathError("config key %r must be %s; got %r." % (key, codec.describe(), values[key])) from exc
        ctypes.memmove(ptr + offset, raw, len(raw))
