"""The Hook interface every attach point implements, and the one deploy/remove flow that drives any of them.

A hook turns a Request (from module parameters or from a Record) into a
change of the kernel in five steps, the same for every attach point:

    observe   read what the kernel runs at this hook (fds and plain data)
    load      load the requested program (running the verifier), not yet live
    plan      pure: observed data + the loaded program's facts -> Plan
              (changed, the diff, the steps); unit-tested without root
    apply     carry the plan's steps out, undoing them all if one fails
    record    the Record the host keeps of what now runs

deploy() and remove() below are the only callers of those steps; modules,
checkpoints and info talk to hooks through the registry (hooks/__init__.py)
and never name a concrete hook.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any, ClassVar

from ..errors import DatapathError
from ..kernel import bpffs, libbpf
from ..kernel import netns as netns_
from ..program.compile import sha256_file
from ..record.record import Record
from ..record.store import DEFAULT_STATE_DIR, StateStore


@dataclasses.dataclass
class Request:
    """What the operator asked for at one hook; plain data, checked by the hook that takes it."""

    interface: str
    name: str
    object_path: str | None = None
    program: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    priority: int | None = None  # None: the hook's default
    attach: dict[str, Any] = dataclasses.field(default_factory=dict)  # the hook's own placement options
    objects: dict[str, str | None] = dataclasses.field(default_factory=dict)  # other objects the hook loads
    pin_path: str | None = None
    force: bool = False
    verify: bool = True
    bpffs: str = bpffs.DEFAULT_BPFFS
    state_dir: str = DEFAULT_STATE_DIR
    src: str | None = None
    defines: dict[str, Any] = dataclasses.field(default_factory=dict)
    netns: str | None = None  # the interface's network namespace (name under /run/netns or path); None: ours

    def __post_init__(self):
        self.config = dict(self.config or {})
        self.defines = dict(self.defines or {})
        self.attach = dict(self.attach or {})
        self.netns = self.netns or None
        # records and pins go under the key, so eth0 in a namespace never meets the host's eth0
        self.key = netns_.key(self.interface, self.netns)
        self.pin_dir, self.index_path = bpffs.pin_paths(self.bpffs, self.key, self.name, self.pin_path)


@dataclasses.dataclass
class Plan:
    """What a deploy or remove will do: pure data, built by Hook.plan from what was observed."""

    changed: bool
    before: dict
    after: dict
    steps: list[tuple] = dataclasses.field(default_factory=list)  # hook-specific, read by its apply()
    result: dict = dataclasses.field(default_factory=dict)  # hook-specific result keys


class Hook:
    """One attach point. Subclasses set NAME and PROG_TYPE and implement the steps."""

    NAME = None  # the registry key, kept in Record.hook
    PROG_TYPE = None
    KIND_NAME = None  # the program kind in people's words ("an XDP program")
    OPTIONS: ClassVar[dict] = {}  # constants modules take for their argument specs (choices, defaults)
    DEFAULT_PRIORITY = 50
    KINDS: ClassVar[dict] = {}  # PROG_TYPE: KIND_NAME of every hook defined (filled as each subclass is)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.PROG_TYPE is not None:
            Hook.KINDS[cls.PROG_TYPE] = cls.KIND_NAME

    def __init__(self, request: Request):
        self.req = request
        self.warnings: list[str] = []  # sentences for the operator (module.warn), e.g. a fallback taken
        self.check_request(request)

    # building requests ------------------------------------------------
    @classmethod
    def attach_params(cls, params: dict) -> dict:
        """The hook's placement options out of module parameters."""
        raise NotImplementedError

    @classmethod
    def from_params(cls, params: dict, object_path: str | None, objects: dict | None = None) -> Hook:
        """The hook for a module's parameters (objects already compiled or shipped)."""
        return cls(Request(
            params["interface"], params["name"], object_path=object_path, program=params.get("program"),
            config=params.get("config"), priority=params.get("priority", cls.DEFAULT_PRIORITY),
            attach=cls.attach_params(params), objects=objects or {}, pin_path=params.get("pin_path"),
            force=params.get("force", False), verify=params.get("verify", True), bpffs=params["bpffs"],
            state_dir=params["state_dir"], src=params.get("src"), defines=params.get("defines"),
            netns=params.get("netns")))

    @classmethod
    def from_record(cls, record: Record, bpffs_path: str, state_dir: str) -> Hook:
        """The hook that deploys (or removes) what record describes, from the stored objects."""
        return cls(Request(
            record.interface, record.name, object_path=record.object, program=record.program, config=record.config,
            priority=record.priority, attach=dict(record.attach), objects=dict(record.objects),
            pin_path=record.pin_path, bpffs=bpffs_path, state_dir=state_dir, src=record.src,
            defines=record.defines, netns=record.netns))

    def check_request(self, req: Request) -> None:
        """Refuse a request this hook cannot carry out, with one sentence."""

    def refuse_netns(self, req: Request) -> None:
        """For hooks that work in this process's network namespace only."""
        if req.netns:
            raise DatapathError("netns %r: %s is attached in the host's network namespace only; the netns option "
                                "is for XDP programs." % (req.netns, self.KIND_NAME))

    # describing -------------------------------------------------------
    @staticmethod
    def where(record: Record) -> str:
        """The hook in people's words, for checkpoint listings ("xdp", "tc ingress")."""
        raise NotImplementedError

    @staticmethod
    def inspect(ifname: str, index: int, bpffs_path: str, pinned: dict[int, str], out: dict,
                netns: str | None = None) -> dict:
        """Add what runs at this hook on an interface to out (datapath_info's shape); return {name: entry} of ours.
        ifname is the engine's key of the interface, netns its network namespace (None: this process's)."""
        raise NotImplementedError

    @staticmethod
    def same_place(old: Record, new: Record) -> bool:
        """Whether new can replace old in place (False: old must be removed first)."""
        return True

    # the steps --------------------------------------------------------
    def observe(self, store: StateStore) -> object:
        """What the kernel runs at this hook; an object with close(). Called under the host lock."""
        raise NotImplementedError

    def load(self, seen: object, record: Record | None, check_mode: bool) -> object | None:
        """What the plan needs loaded: the requested program (running the verifier) unless a check without
        verify, and whatever the hook loads beside it; an object with close(), or None."""
        raise NotImplementedError

    def plan(self, seen: object, loaded: object | None, record: Record | None, object_sha: str) -> Plan:
        raise NotImplementedError

    def apply(self, seen: object, loaded: object, plan: Plan, store: StateStore) -> dict:
        """Carry plan out; return result keys learnt on the way (prog_id, mode...)."""
        raise NotImplementedError

    def record(self, loaded: object, plan: Plan, applied: dict, object_sha: str, store: StateStore) -> Record:
        req = self.req
        return Record(
            hook=self.NAME, interface=req.interface, name=req.name, object_sha256=object_sha,
            object=store.keep_object(req.object_path, object_sha), program=loaded.function, config=req.config,
            defines=req.defines, priority=req.priority, pin_path=req.pin_dir, src=req.src,
            prog_id=applied["prog_id"], tag=applied["tag"], attach=self.recorded_attach(plan, applied),
            objects={k: store.keep_object(p, sha256_file(p)) for k, p in req.objects.items() if p}, netns=req.netns)

    def recorded_attach(self, plan: Plan, applied: dict) -> dict:
        return dict(self.req.attach)

    def plan_remove(self, seen: object, record: Record | None) -> Plan:
        raise NotImplementedError

    def apply_remove(self, seen: object, plan: Plan, store: StateStore) -> None:
        raise NotImplementedError

    # shared by the hooks ---------------------------------------------
    def pinned_fd(self) -> int | None:
        """An fd of the program pinned under this request's name, or None; refuses a name held by another kind."""
        fd = bpffs.get(os.path.join(self.req.pin_dir, "prog"))
        if fd is None:
            return None
        prog_type = libbpf.prog_info(fd)["type"]
        if prog_type != self.PROG_TYPE:
            os.close(fd)
            what = Hook.KINDS.get(prog_type, "another kind of program")
            raise DatapathError("name %r on interface %r is already %s deployed by wirespeed; choose another name."
                                % (self.req.name, self.req.interface, what))
        return fd

    def is_pinned(self) -> bool:
        return os.path.exists(self.req.pin_dir) or os.path.islink(self.req.index_path)


class Undo:
    """Steps to take back, newest first, if a later step fails."""

    def __init__(self):
        self.steps = []

    def add(self, fn: Callable, *args: object) -> None:
        self.steps.append((fn, args))

    def run(self) -> None:
        for fn, args in reversed(self.steps):
            try:
                fn(*args)
            except (OSError, DatapathError):  # best effort: keep undoing the rest
                continue
        self.steps = []


def deploy(hook: Hook, check_mode: bool = False) -> dict:
    """Make hook's request run: observe, load, plan, and unless check mode or unchanged, apply and record."""
    req = hook.req
    store = StateStore(req.state_dir)
    if not req.object_path or not os.path.isfile(req.object_path):
        raise DatapathError("object file %s does not exist on this host." % req.object_path)
    object_sha = sha256_file(req.object_path)
    with store.lock():
        store.refuse_after_expiry()
        if not check_mode:
            bpffs.ensure_bpffs(req.bpffs)
        seen = hook.observe(store)
        try:
            record = store.current(req.key, req.name)
            loaded = hook.load(seen, record, check_mode)
            try:
                plan = hook.plan(seen, loaded, record, object_sha)
                result = dict(plan.result, changed=plan.changed, diff={"before": plan.before, "after": plan.after},
                              object_sha256=object_sha, priority=req.priority,
                              verified=loaded is not None and getattr(loaded, "fp", None) is not None,
                              maps=loaded.map_paths(req.pin_dir) if loaded else {},
                              maps_recreated=loaded.recreated if loaded else [])
                if plan.changed:
                    result["previous"] = record.view() if record else None
                else:
                    previous = store.previous(req.key, req.name)
                    result["previous"] = previous.view() if previous else None
                if not plan.changed or check_mode:
                    return result
                store.reserve(req.object_path, object_sha)  # the record must fit before the kernel changes
                applied = hook.apply(seen, loaded, plan, store)
                result.update(applied)
                store.record(req.key, req.name, hook.record(loaded, plan, applied, object_sha, store))
                return result
            finally:
                if loaded is not None:
                    loaded.close()
        finally:
            seen.close()


def remove(hook: Hook, check_mode: bool = False) -> dict:
    """Take hook's request out of the kernel and the record."""
    req = hook.req
    store = StateStore(req.state_dir)
    with store.lock():
        store.refuse_after_expiry()
        seen = hook.observe(store)
        try:
            record = store.current(req.key, req.name)
            plan = hook.plan_remove(seen, record)
            was_attached = plan.result.pop("was_attached", False)
            result = dict(plan.result, changed=plan.changed, diff={"before": plan.before, "after": plan.after},
                          maps={}, prog_id=None, tag=None, previous=record.view() if record else None)
            if not plan.changed or check_mode:
                return result
            store.reserve()
            hook.apply_remove(seen, plan, store)
            if record is not None or was_attached:
                store.record(req.key, req.name, None)
            return result
        finally:
            seen.close()
