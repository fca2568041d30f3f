"""The Record: the one definition of what a host remembers about a deployed program, versioned and migrated."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
import time
from typing import Any

VERSION = 2

# Version 1 (collection 0.1.0) wrote one flat dict per program; these of its keys belong to one hook.
_V1_ATTACH_KEYS = ("mode", "direction", "handle")
_V1_OBJECT_KEYS = {"root_object": "root"}


@dataclasses.dataclass(frozen=True)
class Record:
    """What was deployed: the program, where it is attached, and where its stored object and pins are.

    `hook` names the Hook implementation (xdp, tc); `attach` holds where only
    that hook knows (XDP: mode; TC: direction and handle); `objects` the other
    stored objects it needs (XDP: the chain root). `identity()` is what makes
    two records the same datapath.
    """

    hook: str
    interface: str
    name: str
    object_sha256: str
    object: str | None = None  # the stored copy under <state_dir>/objects
    program: str | None = None  # the function loaded
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    defines: dict[str, Any] = dataclasses.field(default_factory=dict)
    priority: int | None = None
    pin_path: str | None = None
    src: str | None = None
    prog_id: int | None = None
    tag: str | None = None
    deployed_at: str | None = None
    attach: dict[str, Any] = dataclasses.field(default_factory=dict)
    objects: dict[str, str] = dataclasses.field(default_factory=dict)
    netns: str | None = None  # the interface's network namespace (name or path); None: the host's
    map_sizes: dict[str, int] = dataclasses.field(default_factory=dict)  # max_entries given at load time

    def to_dict(self) -> dict:
        return dict(dataclasses.asdict(self), version=VERSION)

    @classmethod
    def from_dict(cls, data: dict | None, interface: str | None = None, name: str | None = None) -> Record | None:
        """A Record from what state.json or a checkpoint holds, in any version this collection wrote."""
        if not data:
            return None
        data = dict(data)
        if data.get("version", 1) == 1:
            data = _migrate_v1(data, interface, name)
        data.pop("version", None)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def stamped(self, **changes) -> Record:
        """This record with changes, and deployed_at set to now."""
        return dataclasses.replace(self, deployed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **changes)

    def identity(self) -> dict:
        """The parts that make two deployments the same datapath (not ids, times or stored paths)."""
        out = dict(self.view(), pin_path=self.pin_path)
        del out["src"]  # where the source lived on the controller does not change what runs
        return out

    def view(self) -> dict:
        """What a task returns as `previous`: the deployed version in the operator's terms."""
        out = dict(self.attach, hook=self.hook, object_sha256=self.object_sha256, program=self.program,
                   config=self.config, priority=self.priority, src=self.src)
        if self.netns:  # only when set: records of the host's namespace keep the identity they had
            out["netns"] = self.netns
        if self.map_sizes:  # likewise: records without sizes keep their identity
            out["map_sizes"] = dict(self.map_sizes)
        return out


def _migrate_v1(data: dict, interface: str | None, name: str | None) -> dict:
    """A version-1 flat record ({kind, direction, handle, mode, root_object, ...}) in version-2 form."""
    hook = data.pop("kind", None) or "xdp"
    attach = {k: data.pop(k) for k in _V1_ATTACH_KEYS if data.get(k) is not None}
    objects = {new: data.pop(old) for old, new in _V1_OBJECT_KEYS.items() if data.get(old)}
    for k in list(_V1_ATTACH_KEYS) + list(_V1_OBJECT_KEYS):
        data.pop(k, None)
    data.setdefault("interface", interface)
    data.setdefault("name", name)
    return dict(data, hook=hook, attach=attach, objects=objects)
