"""The XDP hook: programs in an interface's tail-call chain behind one root program attached over netlink.

Whether anything changes is decided by observation: the new program is
loaded (which also runs the verifier) and compared with the pinned one by
kernel tag, live `.rodata` and map identities; its slot, priority and the
attachment mode are read from the chain maps and netlink. The chain order
and the plan are pure functions of that observation (plan_chain, plan_slot,
below); every step that touches the datapath is undone if a later one fails.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
import os
from typing import ClassVar

from ..errors import DatapathError
from ..kernel import bpffs, libbpf, links, xdp_netlink
from ..kernel import netns as netns_
from ..kernel.chain import HEAD, LINKS_MAP, PROGS_MAP, SLOT_VAR, SLOTS, Chain
from ..program.bpf_object import BpfObject
from ..program.fingerprint import fingerprint, prog_id, prog_summary, program_maps
from ..program.loaded import LoadedProgram
from ..record.record import Record
from ..record.store import StateStore
from .base import Hook, Plan, Request, Undo

MODES = ("auto", "native", "generic", "offload")
ROOT_FUNCTION = "wirespeed_root"


@dataclasses.dataclass(frozen=True)
class Slot:
    """One program in the chain as observed: slot, priority, program id, name, whether it hands on, whether pinned."""

    slot: int
    priority: int
    prog_id: int | None
    name: str
    chain_aware: bool = True
    pinned: bool = True  # False: nothing under the interface's folder holds it (its pins were lost)


# pure planning --------------------------------------------------------------
def find_own(chain: list[Slot], name: str, record_prog_id: int | None) -> Slot | None:
    """This program's entry: the slot pinned under its name, else the recorded program whose pins were lost.

    Only an unpinned slot can be that lost program: ids start again after a
    reboot, so a recorded id may name another, pinned, program by now.
    """
    for entry in chain:
        if entry.name == name and entry.pinned:
            return entry
    if record_prog_id is not None:
        for entry in chain:
            if entry.prog_id == record_prog_id and not entry.pinned:
                return entry
    return None


def plan_slot(chain: list[Slot], own: Slot | None, priority: int) -> tuple[int, bool]:
    """(slot for the new version, whether it replaces the old one in place: same slot, same priority)."""
    if own is not None and own.priority == priority:
        return own.slot, True
    used = {e.slot for e in chain} | ({own.slot} if own else set())
    for slot in range(SLOTS):
        if slot not in used:
            return slot, False
    raise DatapathError("all %d chain slots of this interface are in use; remove a program first." % SLOTS)


def plan_chain(chain: list[Slot], own: Slot | None, new: Slot, interface: str) -> list[Slot]:
    """The chain after new takes own's place, in packet order (priority, then name).

    A program that does not hand packets on can only run last.
    """
    entries = [e for e in chain if e is not own and e.name != new.name] + [new]
    entries.sort(key=lambda e: (e.priority, e.name))
    for entry in entries[:-1]:
        if not entry.chain_aware:
            last = entries[-1]
            raise DatapathError(
                "program %r (priority %d) on %s does not hand packets on (it does not use wirespeed/chain.h), so "
                "%r (priority %d) could never run after it; give the plain program the highest priority."
                % (entry.name, entry.priority, interface, last.name, last.priority))
    return entries


def predecessor(order: list[Slot], name: str) -> int:
    """The slot name runs right after (HEAD when first)."""
    idx = [e.name for e in order].index(name)
    return HEAD if idx == 0 else order[idx - 1].slot


def resolve_mode(requested: str, attached_mode: str | None, ours_attached: bool) -> str:
    if requested != "auto":
        return requested
    return attached_mode if ours_attached and attached_mode else "native"


# observation ----------------------------------------------------------------
class Seen:
    """Everything observed on one interface: attachment, chain, our pinned programs; holds fds until close()."""

    def __init__(self, hook: XdpHook):
        req = hook.req
        self.netns = req.netns
        self.index = links.ifindex(req.interface, req.netns)
        self.xdp = xdp_netlink.xdp_state(self.index, req.netns)
        self.chain = Chain.open_pinned(req.bpffs, req.key) if bpffs.mounted_bpffs(req.bpffs) else None
        self.old_fd = None
        try:
            self.root_id = prog_id(self.chain.root_fd) if self.chain else None
            self.ours_attached = self.root_id is not None and self.xdp["prog_id"] == self.root_id
            self.orphan_root = False
            self.foreign_id = None
            if self.xdp["prog_id"] and not self.ours_attached:
                self.orphan_root = self.chain is None and _is_root(self.xdp["prog_id"])
                self.foreign_id = None if self.orphan_root else self.xdp["prog_id"]
            names = bpffs.pinned_programs(req.bpffs, req.key)
            self.slots = [Slot(s, p, i, names.get(i, "slot%d" % s), _chain_aware(i), i in names)
                          for s, p, i in (self.chain.order() if self.chain else [])]
            self.old_fd = hook.pinned_fd()
            self.old_fp = fingerprint(self.old_fd) if self.old_fd is not None else None
            self.old_prog_id = prog_id(self.old_fd) if self.old_fd is not None else None
            attached_ours = self.ours_attached or self.orphan_root
            self.root_tag = prog_summary(self.xdp["prog_id"])["tag"] if attached_ours else None
            self.foreign = self._foreign_description() if self.foreign_id else None
        except Exception:
            self.close()
            raise

    def _foreign_description(self) -> str:
        fd = libbpf.prog_fd_by_id(self.foreign_id)
        try:
            name = libbpf.prog_info(fd)["name"]
        finally:
            os.close(fd)
        return "program %r (id %d, %s mode)" % (name, self.foreign_id, self.xdp["mode"])

    def close(self) -> None:
        if self.chain:
            self.chain.close()
        if self.old_fd is not None:
            os.close(self.old_fd)
            self.old_fd = None


class Gone:
    """What is observed of an interface whose network namespace is gone: nothing runs there any more."""

    index = chain = foreign = foreign_id = old_fd = old_fp = old_prog_id = root_tag = None
    ours_attached = orphan_root = False
    xdp: ClassVar[dict] = {"mode": None, "prog_id": None}
    slots: ClassVar[list] = []

    def close(self) -> None:
        pass


def _chain_aware(prog_id_: int | None) -> bool:
    if not prog_id_:
        return True
    fd = libbpf.prog_fd_by_id(prog_id_)
    try:
        return PROGS_MAP in program_maps(fd)
    finally:
        os.close(fd)


def _is_root(prog_id_: int) -> bool:
    """Whether the attached program is a wirespeed chain root (its pins lost): by its name and its chain maps."""
    fd = libbpf.prog_fd_by_id(prog_id_)
    try:
        info = libbpf.prog_info(fd)
        return info["name"] == ROOT_FUNCTION[:15] and {PROGS_MAP, LINKS_MAP} <= set(program_maps(fd))
    finally:
        os.close(fd)


class Loaded:
    """The requested program and, when the attached root is not current, a new root with its chain."""

    def __init__(self, program: LoadedProgram | None, root: Chain | None, seen: Seen, *, mode: str, slot: int,
                 in_place: bool, own: Slot | None):
        self.program, self.root, self.mode = program, root, mode
        self.slot, self.in_place, self.own = slot, in_place, own
        try:
            self.fp = fingerprint(program.fd) if program else None
            self.chain_aware = PROGS_MAP in program.defined if program else True
            self.root_tag = libbpf.prog_info((root or seen.chain).root_fd)["tag"] if (root or seen.chain) else None
        except Exception:
            self.close()
            raise

    @property
    def function(self) -> str | None:
        return self.program.function if self.program else None

    @property
    def recreated(self) -> list[str]:
        return self.program.recreated if self.program else []

    def map_paths(self, pin_dir: str) -> dict[str, str]:
        return self.program.map_paths(pin_dir) if self.program else {}

    def close(self) -> None:
        if self.program:
            self.program.close()
        if self.root:
            self.root.close()


class XdpHook(Hook):
    NAME = "xdp"
    PROG_TYPE = libbpf.PROG_TYPE_XDP
    KIND_NAME = "an XDP program"
    OPTIONS: ClassVar[dict] = {"modes": MODES, "default_priority": Hook.DEFAULT_PRIORITY}

    @classmethod
    def attach_params(cls, params: dict) -> dict:
        return {"mode": params.get("mode") or "auto"}

    def check_request(self, req: Request) -> None:
        req.attach.setdefault("mode", "auto")
        if req.attach["mode"] not in MODES:
            raise DatapathError("mode %r is not one of %s." % (req.attach["mode"], ", ".join(MODES)))
        if req.priority is None:
            req.priority = self.DEFAULT_PRIORITY
        if not isinstance(req.priority, int) or isinstance(req.priority, bool) or not 0 <= req.priority < 1 << 31:
            raise DatapathError("priority %r must be an integer from 0 to 2147483647." % (req.priority,))

    @staticmethod
    def where(record: Record) -> str:
        return "xdp"

    def observe(self, store: StateStore) -> Seen | Gone:
        where = netns_.path(self.req.netns)
        if where is not None and not os.path.exists(where):
            return Gone()  # a deploy refuses it (load); a removal forgets the program and its pins
        return Seen(self)

    # load -------------------------------------------------------------
    def _placement(self, seen: Seen, record: Record | None):
        """(own entry, slot, whether in place, mode) of the request on the observed interface."""
        req = self.req
        self._refuse_foreign(seen)
        own = find_own(seen.slots, req.name, record.prog_id if record else None)
        slot, in_place = plan_slot(seen.slots, own, req.priority)
        mode = resolve_mode(req.attach["mode"], seen.xdp["mode"], seen.ours_attached or seen.orphan_root)
        return own, slot, in_place, mode

    def load(self, seen: Seen, record: Record | None, check_mode: bool) -> Loaded:
        """The root (every run: a newer one replaces the attached one) and, unless a check without verify, the
        program."""
        req = self.req
        if isinstance(seen, Gone):
            netns_.check(req.netns)  # raises the one sentence
        own, slot, in_place, mode = self._placement(seen, record)
        root = self._load_root(seen, mode)
        chain = seen.chain or root
        program = None
        try:
            if req.verify or not check_mode:
                program = LoadedProgram(req.object_path, req.program, self.PROG_TYPE, config=req.config,
                                        pin_dir=req.pin_dir, internal={SLOT_VAR: slot},
                                        reuse={PROGS_MAP: chain.progs_fd, LINKS_MAP: chain.links_fd},
                                        offload_ifindex=seen.index if mode == "offload" else None)
            if (seen.chain is not None and seen.ours_attached and seen.xdp["mode"] == mode
                    and fingerprint(root.root_fd) == fingerprint(seen.chain.root_fd)):
                root.close()
                root = None
        except Exception:
            if root:
                root.close()
            if program:
                program.close()
            raise
        return Loaded(program, root, seen, mode=mode, slot=slot, in_place=in_place, own=own)

    def _refuse_foreign(self, seen: Seen) -> None:
        if seen.foreign_id and not self.req.force:
            raise DatapathError(
                "interface %r already runs XDP %s that wirespeed did not attach; remove it, or set force: true "
                "to replace it." % (self.req.interface, seen.foreign))

    def _load_root(self, seen: Seen, mode: str) -> Chain:
        """Load the chain root, reusing the chain's maps when there is one.

        The root is loaded every run: a fresh interface needs it, and a root
        built from a newer collection replaces the old one.
        """
        req = self.req
        root_object = req.objects.get("root")
        if not root_object:
            raise DatapathError("the chain root object is missing; run the task through the xdp_program action "
                                "or pass root_object.")
        obj = BpfObject(root_object)
        try:
            obj.select(None, libbpf.PROG_TYPE_XDP)
            if seen.chain:
                obj.reuse_map(PROGS_MAP, seen.chain.progs_fd)
                obj.reuse_map(LINKS_MAP, seen.chain.links_fd)
            if mode == "offload":
                obj.set_ifindex(seen.index)
                try:
                    obj.load()
                except DatapathError as exc:
                    raise DatapathError(
                        "the driver of interface %r does not support XDP mode offload (%s); use mode native, generic "
                        "or auto." % (req.interface, exc.message), detail=exc.detail) from exc
            else:
                obj.load()
            fresh = Chain(os.dup(obj.prog_fd), os.dup(obj.map_fd(PROGS_MAP)), os.dup(obj.map_fd(LINKS_MAP)))
            if not seen.chain:
                fresh.init_links()
        finally:
            obj.close()
        return fresh

    # plan (pure over seen's data and loaded's facts) ------------------------
    def plan(self, seen: Seen, loaded: Loaded, record: Record | None, object_sha: str) -> Plan:
        req = self.req
        own, slot, in_place, mode = loaded.own, loaded.slot, loaded.in_place, loaded.mode
        new_fp, aware, root_tag = loaded.fp, loaded.chain_aware, loaded.root_tag
        new_root = loaded.root is not None
        if loaded.program is None:  # check mode without verify: sameness from the record
            same_prog = (record is not None and record.object_sha256 == object_sha and record.config == req.config
                         and seen.old_fp is not None)
        else:
            same_prog = seen.old_fp is not None and new_fp == seen.old_fp and not loaded.recreated
        order = plan_chain(seen.slots, own, Slot(slot, req.priority, None, req.name, aware), req.interface)
        live = own is not None and seen.old_prog_id is not None and own.prog_id == seen.old_prog_id
        kept = same_prog and in_place and live
        changed = new_root or not kept
        before = {
            "name": req.name, "program": record.program if (record and own) else None,
            "attached": own is not None, "mode": seen.xdp["mode"] if seen.ours_attached else None,
            "priority": own.priority if own else None, "tag": seen.old_fp["tag"] if seen.old_fp else None,
            "object_sha256": record.object_sha256 if (record and own) else None,
            "config": record.config if (record and own) else None,
            "chain": [e.name for e in seen.slots], "root_tag": seen.root_tag if seen.ours_attached else None,
        }
        if seen.foreign:
            before["foreign"] = seen.foreign
        after = {
            "name": req.name, "program": loaded.function if loaded else req.program, "attached": True,
            "mode": mode, "priority": req.priority, "tag": new_fp["tag"] if new_fp else None,
            "object_sha256": object_sha, "config": req.config, "chain": [e.name for e in order],
            "root_tag": root_tag,
        }
        result = {"mode": mode, "chain": after["chain"]}
        if not changed:
            result.update(prog_id=seen.old_prog_id, tag=seen.old_fp["tag"])
        else:
            result.update(prog_id=None, tag=new_fp["tag"] if new_fp else None)
        steps = []
        if not kept:
            steps.append(("swap", own.slot) if (own and in_place) else ("insert", predecessor(order, req.name)))
            if own and not in_place:
                steps.append(("remove", own.slot))
        if new_root:
            steps.append(("root", mode))
        return Plan(changed, before, after, steps, result)

    # apply ------------------------------------------------------------
    def apply(self, seen: Seen, loaded: Loaded, plan: Plan, store: StateStore) -> dict:
        req = self.req
        chain = seen.chain or loaded.root
        undo = Undo()
        mode = loaded.mode
        kept = not any(step[0] in ("swap", "insert") for step in plan.steps)
        try:
            for step in plan.steps:
                if step[0] == "swap":
                    chain.set_prog(step[1], loaded.program.fd)
                    undo.add(_set_prog_by_id, chain, step[1], loaded.own.prog_id)
                elif step[0] == "insert":
                    chain.insert(loaded.slot, loaded.program.fd, req.priority, step[1])
                    undo.add(chain.remove, loaded.slot)
                elif step[0] == "remove":
                    chain.remove(step[1])
            if seen.chain is None:
                chain.pin(req.bpffs, req.key)
                undo.add(bpffs.remove_tree, bpffs.chain_dir(req.bpffs, req.key))
            if loaded.root is not None:
                mode = self._attach_root(seen, loaded.root, mode, undo)
            if not kept:
                loaded.program.pin(req.pin_dir, req.index_path)
        except Exception:
            undo.run()
            raise
        fd = seen.old_fd if kept else loaded.program.fd
        plan.after["mode"] = mode
        out = {"mode": mode, "prog_id": prog_id(fd), "tag": libbpf.prog_info(fd)["tag"]}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    def _attach_root(self, seen: Seen, root: Chain, mode: str, undo: Undo) -> str:
        """Attach (or re-attach in another mode) the chain root; atomic where the kernel allows."""
        req = self.req
        expected = libbpf.prog_fd_by_id(seen.xdp["prog_id"]) if seen.xdp["prog_id"] else None
        try:
            if expected is not None and seen.xdp["mode"] != mode:
                # the kernel refuses native and generic at once: this switch has a gap
                xdp_netlink.detach(seen.index, seen.xdp["mode"], expected, req.key, req.netns)
                undo.add(_reattach, seen.index, seen.xdp["prog_id"], seen.xdp["mode"], req.key, req.netns)
                xdp_netlink.attach(seen.index, root.root_fd, mode, None, req.key, req.netns)
            elif expected is not None:
                xdp_netlink.attach(seen.index, root.root_fd, mode, expected, req.key, req.netns)
            else:
                try:
                    xdp_netlink.attach(seen.index, root.root_fd, mode, None, req.key, req.netns)
                except DatapathError:
                    if req.attach["mode"] != "auto" or mode != "native":
                        raise
                    mode = "generic"
                    xdp_netlink.attach(seen.index, root.root_fd, mode, None, req.key, req.netns)
                    self.warnings.append(
                        "mode auto fell back to generic on %s: its driver refused native XDP, so every packet "
                        "pays for an skb first; set mode generic to make that explicit, or use a driver with "
                        "native XDP." % req.key)
        finally:
            if expected is not None:
                os.close(expected)
        if seen.chain is not None:
            bpffs.pin_replace(root.root_fd, os.path.join(bpffs.chain_dir(req.bpffs, req.key), "root"))
        return mode

    @staticmethod
    def inspect(ifname: str, index: int, bpffs_path: str, pinned: dict[int, str], out: dict,
                netns: str | None = None) -> dict:
        """Fill out's xdp_mode, xdp_prog, managed and chain; return {name: entry} of our chained programs.
        ifname is the engine's key (kernel/netns.py) and netns the namespace the interface is in."""
        xdp = xdp_netlink.xdp_state(index, netns)
        out.update(xdp_mode=xdp["mode"], xdp_prog=prog_summary(xdp["prog_id"]) if xdp["prog_id"] else None,
                   managed=False, chain=[])
        chain = Chain.open_pinned(bpffs_path, ifname) if bpffs.mounted_bpffs(bpffs_path) else None
        programs = {}
        if chain is None:
            return programs
        try:
            out["managed"] = xdp["prog_id"] == libbpf.prog_info(chain.root_fd)["id"]
            for position, (slot, priority, prog_id_) in enumerate(chain.order()):
                name = pinned.get(prog_id_, "slot%d" % slot)
                entry = {"name": name, "hook": "xdp", "slot": slot, "priority": priority, "position": position,
                         "prog": prog_summary(prog_id_) if prog_id_ else None}
                out["chain"].append(entry)
                if prog_id_ in pinned:
                    programs[name] = entry
        finally:
            chain.close()
        return programs

    def recorded_attach(self, plan: Plan, applied: dict) -> dict:
        return {"mode": applied["mode"]}

    # remove -----------------------------------------------------------
    def plan_remove(self, seen: Seen, record: Record | None) -> Plan:
        req = self.req
        own = find_own(seen.slots, req.name, record.prog_id if record else None)
        foreign = seen.foreign_id if req.force else None
        remaining = [e.name for e in seen.slots if e is not own]
        changed = bool(own or self.is_pinned() or foreign or seen.orphan_root)
        steps = ([("remove", own.slot)] if own else []) + ([("detach_foreign", foreign)] if foreign else [])
        if seen.orphan_root:  # our root with its pins lost: nothing else can reach its chain, so it goes too
            steps.append(("detach_foreign", seen.xdp["prog_id"]))
        before = {"attached": own is not None, "priority": own.priority if own else None,
                  "chain": [e.name for e in seen.slots],
                  "foreign": seen.foreign if foreign else None}
        after = {"attached": False, "priority": None, "chain": remaining, "foreign": None}
        return Plan(changed, before, after, steps, {"chain": remaining, "mode": None, "was_attached": own is not None})

    def apply_remove(self, seen: Seen, plan: Plan, store: StateStore) -> None:
        req = self.req
        for step in plan.steps:
            if step[0] == "remove":
                seen.chain.remove(step[1])
        bpffs.unpin(req.pin_dir, req.index_path, req.bpffs)
        idir = bpffs.interface_dir(req.bpffs, req.key)
        if isinstance(seen, Gone) and os.path.isdir(idir) and set(os.listdir(idir)) <= {bpffs.CHAIN_DIR}:
            bpffs.remove_tree(bpffs.chain_dir(req.bpffs, req.key))  # the namespace took the root with it
            bpffs.prune(idir, req.bpffs)
        if seen.chain and not seen.chain.order():
            if seen.ours_attached:
                xdp_netlink.detach(seen.index, seen.xdp["mode"], seen.chain.root_fd, req.key, req.netns)
            bpffs.remove_tree(bpffs.chain_dir(req.bpffs, req.key))
            bpffs.prune(bpffs.interface_dir(req.bpffs, req.key), req.bpffs)
        for step in plan.steps:
            if step[0] == "detach_foreign":
                fd = libbpf.prog_fd_by_id(step[1])
                try:
                    xdp_netlink.detach(seen.index, seen.xdp["mode"], fd, req.key, req.netns)
                finally:
                    os.close(fd)


def _set_prog_by_id(chain: Chain, slot: int, prog_id_: int | None) -> None:
    if prog_id_ is None:
        chain.clear_prog(slot)
        return
    fd = libbpf.prog_fd_by_id(prog_id_)
    try:
        chain.set_prog(slot, fd)
    finally:
        os.close(fd)


def _reattach(index, prog_id_, mode, ifname, netns=None):
    fd = libbpf.prog_fd_by_id(prog_id_)
    try:
        xdp_netlink.attach(index, fd, mode, None, ifname, netns)
    finally:
        os.close(fd)
