"""What the kernel holds for a loaded program: its maps, its live `.rodata`, and the fingerprint that compares two."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import struct

from ..kernel import libbpf
from .bpf_object import map_definition


def fingerprint(fd: int) -> dict:
    """What makes two loaded programs the same datapath: instructions, live .rodata, maps."""
    info = libbpf.prog_info(fd)
    return {"tag": info["tag"], "name": info["name"], "rodata": read_rodata(fd).hex(),
            "maps": sorted(i for i, _def in program_maps(fd).values())}


def prog_id(fd: int) -> int:
    return libbpf.prog_info(fd)["id"]


def prog_summary(prog_id_: int) -> dict:
    """{id, name, tag} of a loaded program, by id."""
    fd = libbpf.prog_fd_by_id(prog_id_)
    try:
        info = libbpf.prog_info(fd)
    finally:
        os.close(fd)
    return {"id": prog_id_, "name": info["name"], "tag": info["tag"]}


def read_rodata(prog_fd: int) -> bytes:
    """The live `.rodata` bytes of a loaded program (b'' when it has none)."""
    for map_id in libbpf.prog_info(prog_fd)["map_ids"]:
        fd = libbpf.map_fd_by_id(map_id)
        try:
            info = libbpf.map_info(fd)
            if info["name"].endswith(".rodata") and info["max_entries"] == 1:
                value = libbpf.map_lookup(fd, struct.pack("I", 0), info["value_size"])
                return value or b""
        finally:
            os.close(fd)
    return b""


def program_maps(prog_fd: int) -> dict[str, tuple[int, dict]]:
    """{kernel map name: (map id, definition)} of a loaded program, internal maps excluded."""
    out = {}
    for map_id in libbpf.prog_info(prog_fd)["map_ids"]:
        fd = libbpf.map_fd_by_id(map_id)
        try:
            info = libbpf.map_info(fd)
        finally:
            os.close(fd)
        if "." in info["name"]:
            continue
        out[info["name"]] = (map_id, map_definition(info["type"], info["key_size"], info["value_size"],
                                                    info["max_entries"], info["flags"]))
    return out
