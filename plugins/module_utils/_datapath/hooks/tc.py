"""The TC hook: direct-action cls_bpf filters on an interface's clsact qdisc, ingress or egress.

Like the XDP hook, whether anything changes is decided by observation: the
requested program is loaded (running the verifier) and compared with the
pinned one, and the filter at the requested priority and handle must run
exactly that pinned program. Filters someone else added are left alone
unless `force`; the clsact qdisc is created when missing and removed only
when wirespeed created it and no filter is left on it. plan_filters is the
pure decision over the observed filters.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
from typing import ClassVar

from ..errors import DatapathError
from ..kernel import bpffs, libbpf, links, tc_netlink
from ..program.fingerprint import fingerprint, prog_id, prog_summary
from ..program.loaded import LoadedProgram
from ..record.record import Record
from ..record.store import StateStore
from .base import Hook, Plan, Request, Undo

DIRECTIONS = ("ingress", "egress")
DEFAULT_HANDLE = 1
CLSACT_FLAG = "clsact_created"


def describe_filter(f: dict) -> str:
    name = f["name"] or f["kind"]
    return "filter %r (%s, priority %d, handle %#x)" % (name, f["kind"], f["pref"], f["handle"])


def filter_name(name: str) -> str:
    """The name our filters carry (`tc filter show` lists it), which also finds one whose pins were lost."""
    return "wirespeed:%s" % name


def plan_filters(hook_filters: list[dict], own_id: int | None, name: str, priority: int,
                 handle: int) -> tuple[dict | None, list[dict], list[dict]]:
    """(the filter to replace in place, ours elsewhere to delete, others at our priority) at one hook.

    Ours: the filter running our pinned program, or one named for this program whose pins were lost.
    """
    ours = [f for f in hook_filters
            if (own_id is not None and f["prog_id"] == own_id) or f["name"] == filter_name(name)]
    here = next((f for f in ours if f["pref"] == priority and f["handle"] == handle), None)
    elsewhere = [f for f in ours if f is not here]
    foreign = [f for f in hook_filters if f["pref"] == priority and f not in ours]
    return here, elsewhere, foreign


class Seen:
    """The clsact qdisc, the filters at the request's hook, and our pinned program; holds its fd until close()."""

    def __init__(self, hook: TcHook, store):
        req = hook.req
        self.index = links.ifindex(req.interface)
        self.old_fd = hook.pinned_fd()
        try:
            self.present = tc_netlink.clsact_present(self.index)
            self.filters = tc_netlink.filters(self.index, req.attach["direction"]) if self.present else []
            self.old_id = prog_id(self.old_fd) if self.old_fd is not None else None
            self.old_fp = fingerprint(self.old_fd) if self.old_fd is not None else None
            self.clsact_ours = store.interface_flag(req.interface, CLSACT_FLAG)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.old_fd is not None:
            os.close(self.old_fd)
            self.old_fd = None


class Loaded(LoadedProgram):
    """The requested program, loaded, with its fingerprint."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            self.fp = fingerprint(self.fd)
        except Exception:
            self.close()
            raise


class TcHook(Hook):
    NAME = "tc"
    PROG_TYPE = libbpf.PROG_TYPE_SCHED_CLS
    KIND_NAME = "a tc program"
    OPTIONS: ClassVar[dict] = {"directions": DIRECTIONS, "default_priority": Hook.DEFAULT_PRIORITY,
                               "default_handle": DEFAULT_HANDLE}

    @classmethod
    def attach_params(cls, params: dict) -> dict:
        return {"direction": params.get("direction"), "handle": params.get("handle", DEFAULT_HANDLE)}

    def check_request(self, req: Request) -> None:
        self.refuse_netns(req)
        direction = req.attach.get("direction")
        if direction not in DIRECTIONS:
            raise DatapathError("direction %r is not one of ingress, egress." % (direction,))
        req.attach.setdefault("handle", DEFAULT_HANDLE)
        if req.priority is None:
            req.priority = self.DEFAULT_PRIORITY
        if not isinstance(req.priority, int) or isinstance(req.priority, bool) or not 1 <= req.priority <= 0xFFFF:
            raise DatapathError("priority %r must be an integer from 1 to 65535 (the filter's pref)." % (req.priority,))
        handle = req.attach["handle"]
        if not isinstance(handle, int) or isinstance(handle, bool) or not 1 <= handle <= 0xFFFFFFFF:
            raise DatapathError("handle %r must be an integer from 1 to 4294967295." % (handle,))

    @property
    def hook_text(self) -> str:
        return "%s %s" % (self.req.interface, self.req.attach["direction"])

    @staticmethod
    def where(record: Record) -> str:
        return "tc %s" % record.attach.get("direction")

    @staticmethod
    def same_place(old: Record, new: Record) -> bool:
        return old.attach.get("direction") == new.attach.get("direction")

    def observe(self, store: StateStore) -> Seen:
        return Seen(self, store)

    @staticmethod
    def inspect(ifname: str, index: int, bpffs_path: str, pinned: dict[int, str], out: dict,
                netns: str | None = None) -> dict:
        """Fill out["tc"] with every filter per direction; return {name: entry} of ours."""
        out["tc"] = {d: [] for d in DIRECTIONS}
        programs = {}
        if netns or not tc_netlink.clsact_present(index):  # TC is attached in the host's namespace only
            return programs
        for direction in DIRECTIONS:
            for f in tc_netlink.filters(index, direction):
                name = pinned.get(f["prog_id"]) if f["prog_id"] else None
                out["tc"][direction].append(dict(f, managed=name is not None, program=name))
                if name:
                    programs[name] = {"name": name, "hook": "tc " + direction, "priority": f["pref"],
                                      "handle": f["handle"], "prog": prog_summary(f["prog_id"])}
        return programs

    def load(self, seen: Seen, record: Record | None, check_mode: bool) -> Loaded | None:
        self._refuse_foreign(seen)
        req = self.req
        if check_mode and not req.verify:
            return None
        return Loaded(req.object_path, req.program, self.PROG_TYPE, config=req.config, pin_dir=req.pin_dir)

    def _split(self, seen: Seen):
        req = self.req
        return plan_filters(seen.filters, seen.old_id, req.name, req.priority, req.attach["handle"])

    def _refuse_foreign(self, seen: Seen) -> None:
        _here, _elsewhere, foreign = self._split(seen)
        if foreign and not self.req.force:
            raise DatapathError(
                "priority %d on %s is taken by %s that wirespeed did not add; choose another priority, or set "
                "force: true to replace it." % (self.req.priority, self.hook_text, describe_filter(foreign[0])))

    def _view(self, f, record):
        req = self.req
        if f is None:
            return {"attached": False, "name": req.name, "direction": req.attach["direction"]}
        return {"attached": True, "name": req.name, "direction": req.attach["direction"], "priority": f["pref"],
                "handle": f["handle"], "tag": f["tag"], "object_sha256": record.object_sha256 if record else None,
                "config": record.config if record else None, "program": record.program if record else None}

    def plan(self, seen: Seen, loaded: Loaded | None, record: Record | None, object_sha: str) -> Plan:
        req = self.req
        self._refuse_foreign(seen)
        here, elsewhere, foreign = self._split(seen)
        if loaded is not None:
            same_prog = seen.old_fp is not None and loaded.fp == seen.old_fp and not loaded.recreated
        else:
            same_prog = record is not None and record.object_sha256 == object_sha and record.config == req.config
        changed = not (same_prog and here is not None and not elsewhere and not foreign)
        after = {"attached": True, "name": req.name, "direction": req.attach["direction"], "priority": req.priority,
                 "handle": req.attach["handle"], "tag": loaded.fp["tag"] if loaded else None,
                 "object_sha256": object_sha, "config": req.config,
                 "program": loaded.function if loaded else req.program}
        before = self._view(here or (elsewhere[0] if elsewhere else None), record)
        if foreign:
            before["foreign"] = [describe_filter(f) for f in foreign]
        steps = []
        if changed:
            steps = ([("add_clsact",)] if not seen.present else []) + [("delete", f) for f in foreign] + \
                [("set", here is not None)] + [("delete", f) for f in elsewhere]
        result = {"direction": req.attach["direction"], "handle": req.attach["handle"],
                  "prog_id": seen.old_id if not changed else None,
                  "tag": (seen.old_fp or {}).get("tag") if not changed else (loaded.fp["tag"] if loaded else None)}
        return Plan(changed, before, after, steps, result)

    def apply(self, seen: Seen, loaded: Loaded, plan: Plan, store: StateStore) -> dict:
        req = self.req
        direction, handle = req.attach["direction"], req.attach["handle"]
        undo = Undo()
        try:
            for step in plan.steps:
                if step[0] == "add_clsact":
                    tc_netlink.add_clsact(seen.index, req.interface)
                    store.set_interface_flag(req.interface, CLSACT_FLAG, True)
                    undo.add(tc_netlink.del_clsact, seen.index)
                elif step[0] == "delete":  # ours at another priority (after the new one runs), or forced foreign
                    f = step[1]
                    tc_netlink.del_filter(seen.index, direction, f["pref"], f["handle"], f["kind"])
                elif step[0] == "set":
                    tc_netlink.set_filter(seen.index, direction, loaded.fd, pref=req.priority, handle=handle,
                                          name=filter_name(req.name), replace=step[1], ifname=req.interface)
                    if not step[1]:
                        undo.add(tc_netlink.del_filter, seen.index, direction, req.priority, handle)
            loaded.pin(req.pin_dir, req.index_path)
        except Exception:
            undo.run()
            raise
        return {"prog_id": prog_id(loaded.fd), "tag": loaded.fp["tag"]}

    def plan_remove(self, seen: Seen, record: Record | None) -> Plan:
        req = self.req
        here, elsewhere, at_priority = self._split(seen)
        ours = ([here] if here else []) + elsewhere
        foreign = at_priority if req.force else []
        changed = bool(ours or foreign or self.is_pinned())
        before = self._view(ours[0] if ours else None, record)
        if foreign:
            before["foreign"] = [describe_filter(f) for f in foreign]
        after = {"attached": False, "name": req.name, "direction": req.attach["direction"]}
        return Plan(changed, before, after, [("delete", f) for f in ours + foreign],
                    {"direction": req.attach["direction"], "was_attached": bool(ours)})

    def apply_remove(self, seen: Seen, plan: Plan, store: StateStore) -> None:
        req = self.req
        for _step, f in plan.steps:
            tc_netlink.del_filter(seen.index, req.attach["direction"], f["pref"], f["handle"], f["kind"])
        bpffs.unpin(req.pin_dir, req.index_path, req.bpffs)
        if seen.present and seen.clsact_ours:
            left = tc_netlink.filters(seen.index, "ingress") + tc_netlink.filters(seen.index, "egress")
            if not left:
                tc_netlink.del_clsact(seen.index)
                store.set_interface_flag(req.interface, CLSACT_FLAG, False)
