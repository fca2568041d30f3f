"""Who holds an interface's XDP or TCX hook when wirespeed did not attach it: a bpf_link, libxdp, Cilium, bpfman.

A program attached through a bpf_link (BPF_LINK_CREATE: xdp-loader, Cilium,
bpfman, libbpf's bpf_program__attach_xdp) can only be replaced through that
link by its owner: netlink attaches then fail with EBUSY whatever the flags,
and `force` must not take it away. The links are walked with
BPF_LINK_GET_NEXT_ID and read with BPF_OBJ_GET_INFO_BY_FD; an XDP link
names only an ifindex, so it is matched to the interface by the program id
that netlink reports attached there as well. The tool behind a program is
told from its name (libxdp's dispatcher, Cilium's entry program) and from
the pins that tool keeps on bpffs.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ctypes
import os

from . import libbpf, xdp_netlink

LINK_TYPE_XDP = 6
LINK_TYPE_TCX = 11
TCX_ATTACH = {46: "ingress", 47: "egress"}  # BPF_TCX_INGRESS, BPF_TCX_EGRESS
# Where other tools pin their links and programs (read only, where found).
TOOL_PINS = {"cilium": ("/sys/fs/bpf/cilium",), "bpfman": ("/run/bpfman/fs", "/sys/fs/bpf/bpfman")}
TOOL_PROGRAMS = {"xdp_dispatcher": "libxdp", "cil_xdp_entry": "cilium"}
WHAT_TO_DO = {
    "libxdp": "unload its programs with `xdp-loader unload {ifname} --all` (or the application that loaded them "
              "through libxdp), then run the task again",
    "cilium": "Cilium's XDP acceleration holds it: turn that off for this device (loadBalancer.acceleration: "
              "disabled) or leave this interface to Cilium",
    "bpfman": "bpfman holds it: unload that program with `bpfman unload` (bpfman list shows it), then run the "
              "task again",
    None: "only the tool that made the link can take it away: stop that tool or detach the link with `bpftool "
          "link detach id {link_id}`, then run the task again",
}


class LinkInfo(ctypes.Structure):
    """struct bpf_link_info: type, id, prog_id, then a union (8-aligned) whose xdp and tcx members begin with an
    ifindex; room for the largest member."""
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("prog_id", ctypes.c_uint32),
                ("_pad", ctypes.c_uint32), ("ifindex", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                ("_rest", ctypes.c_uint8 * 56)]


def links() -> list[dict]:
    """Every bpf_link of the XDP or TCX kind on this host: [{link_id, type, prog_id, ifindex, attach_type}]."""
    lib = libbpf.lib()
    out, cur = [], ctypes.c_uint32(0)
    while True:
        nxt = ctypes.c_uint32(0)
        ret = lib.bpf_link_get_next_id(cur.value, ctypes.byref(nxt))
        if ret < 0:
            break  # ENOENT: the last one (or no permission: nothing to tell)
        cur = nxt
        fd = lib.bpf_link_get_fd_by_id(nxt.value)
        if fd < 0:
            continue  # gone in between
        try:
            info = LinkInfo()
            size = ctypes.c_uint32(ctypes.sizeof(info))
            if lib.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)) < 0:
                continue
        finally:
            os.close(fd)
        if info.type in (LINK_TYPE_XDP, LINK_TYPE_TCX):
            out.append({"link_id": info.id, "type": "xdp" if info.type == LINK_TYPE_XDP else "tcx",
                        "prog_id": info.prog_id, "ifindex": info.ifindex,
                        "attach_type": TCX_ATTACH.get(info.attach_type) if info.type == LINK_TYPE_TCX else None})
    return out


def _program_name(prog_id: int) -> str | None:
    try:
        fd = libbpf.prog_fd_by_id(prog_id)
    except OSError:
        return None
    try:
        return libbpf.prog_info(fd)["name"]
    finally:
        os.close(fd)


def _fd_kind(fd: int) -> tuple[str | None, int | None]:
    """("link"|"prog"|"map", its id) of a bpf fd, from /proc/self/fdinfo."""
    kind = ident = None
    with open("/proc/self/fdinfo/%d" % fd) as fh:
        for line in fh:
            key, _sep, value = line.partition(":")
            if key in ("link_type", "prog_type", "map_type"):
                kind = key[:-5]
            elif key in ("link_id", "prog_id", "map_id") and kind and key.startswith(kind):
                ident = int(value)
    return kind, ident


def _pinned_by(link_id: int | None, prog_id: int) -> tuple[str | None, str | None]:
    """(tool, path) of a pin another tool keeps of this link or program, (None, None) when none is found. Only
    the folders those tools pin links and dispatchers in are read."""
    for tool, roots in TOOL_PINS.items():
        for root in roots:
            for dirpath, _dirs, files in os.walk(root) if os.path.isdir(root) else ():
                for name in files:
                    path = os.path.join(dirpath, name)
                    if not any(word in path for word in ("link", "xdp", "dispatch")):
                        continue
                    try:
                        fd = libbpf.obj_get(path)
                    except OSError:
                        continue
                    try:
                        kind, ident = _fd_kind(fd)
                    finally:
                        os.close(fd)
                    if (kind == "link" and ident == link_id) or (kind == "prog" and ident == prog_id):
                        return tool, path
    return None, None


def xdp_owner(ifname: str, ifindex: int, prog_id: int, mode: str | None, all_links: list[dict] | None = None) -> dict:
    """Who holds interface ifname's XDP hook with prog_id (a program wirespeed did not attach):
    {program, prog_id, mode, attached_by: bpf_link|netlink, link_id, tool: libxdp|cilium|bpfman|None, pin,
    sentence}. The sentence says who holds it and what to do."""
    name = _program_name(prog_id) or "?"
    link = next((lk for lk in (links() if all_links is None else all_links)
                 if lk["type"] == "xdp" and lk["prog_id"] == prog_id and lk["ifindex"] == ifindex), None)
    link_id = link["link_id"] if link else None
    tool, pin = _pinned_by(link_id, prog_id)
    tool = tool or TOOL_PROGRAMS.get(name)
    owner = {"program": name, "prog_id": prog_id, "mode": mode, "attached_by": "bpf_link" if link else "netlink",
             "link_id": link_id, "tool": tool, "pin": pin}
    owner["sentence"] = sentence(ifname, owner)
    return owner


def held(owner: dict | None) -> bool:
    """Whether force may not replace it: a bpf_link, or a program another tool manages."""
    return bool(owner) and (owner["attached_by"] == "bpf_link" or owner["tool"] is not None)


def sentence(ifname: str, owner: dict) -> str:
    """One sentence: who holds the hook and what to do."""
    who = {"libxdp": "libxdp's dispatcher (xdp-loader, xdp-tools)", "cilium": "Cilium", "bpfman": "bpfman"}.get(
        owner["tool"], "another tool")
    how = ("through bpf_link %d" % owner["link_id"]) if owner["link_id"] else "over netlink"
    pin = (", pinned at %s" % owner["pin"]) if owner.get("pin") else ""
    if owner["tool"] is None and owner["attached_by"] == "netlink":
        what = "remove it, or set force: true to replace it"
    else:
        what = WHAT_TO_DO[owner["tool"]].format(ifname=ifname, link_id=owner["link_id"])
        if owner["attached_by"] == "bpf_link":
            what += " (force never takes a link away)"
    return ("interface %r already runs XDP program %r (id %d, %s mode) that %s attached %s%s; %s."
            % (ifname, owner["program"], owner["prog_id"], owner["mode"] or "?", who, how, pin, what))


def tcx_owners(ifindex: int, all_links: list[dict] | None = None) -> list[dict]:
    """The TCX links on ifindex (they run before tc clsact filters, ours among them): [{link_id, direction,
    program, prog_id}]."""
    return [{"link_id": lk["link_id"], "direction": lk["attach_type"], "prog_id": lk["prog_id"],
             "program": _program_name(lk["prog_id"])}
            for lk in (links() if all_links is None else all_links)
            if lk["type"] == "tcx" and lk["ifindex"] == ifindex]


WIRESPEED_ROOTS = ("wirespeed_root", "wirespeed_frags")  # our chain root's two flavours (wirespeed_root.bpf.c)


def foreign_xdp(interfaces: dict[str, int], netns: str | None = None) -> dict[str, dict | None]:
    """{interface: xdp_owner or None} for {name: ifindex}: who holds each XDP hook, when it is not a wirespeed
    chain root (one netlink request per interface, the links read once)."""
    out, all_links = {}, None
    for name, index in interfaces.items():
        state = xdp_netlink.xdp_state(index, netns)
        if not state["prog_id"] or _program_name(state["prog_id"]) in WIRESPEED_ROOTS:
            out[name] = None
            continue
        all_links = links() if all_links is None else all_links
        out[name] = xdp_owner(name, index, state["prog_id"], state["mode"], all_links)
    return out
