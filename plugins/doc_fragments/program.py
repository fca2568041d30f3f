# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Options every program-deploying module (xdp_program, tc_filter) shares; PATHS: the host paths of every module."""

    DOCUMENTATION = r"""
options:
  src:
    description:
      - BPF C source file, compiled with C(clang -O2 -g -target bpf -Wall -Werror).
      - Looked up on the controller like a role file, compiled there, and the object shipped to the host
        (or compiled on the host, see O(compile_on)).
      - C(wirespeed.datapath:<name>) names a program shipped with the collection, wherever it is installed, such
        as C(wirespeed.datapath:drop_port.bpf.c) (an example) or C(wirespeed.datapath:firewall.bpf.c); a name
        that is not shipped fails with the list of those that are.
    type: path
  object:
    description: A prebuilt BPF object (looked up on the controller first and shipped, else taken as a host path).
    type: path
  program:
    description: Function name of the program in the object. Default is the only program of the module's type there.
    type: str
  config:
    description:
      - Values for C(const volatile) globals of the program, written into C(.rodata) before load.
      - Types come from the object's BTF; an unknown name or a value that does not fit fails the task.
        Globals typed C(__be16)/C(__be32) are stored in network byte order.
      - An integer array global (for example C(__u16 ports[16])) takes a list of at most that many
        integers; the entries left out are 0.
    type: dict
    default: {}
  defines:
    description: Preprocessor definitions passed to clang as C(-DKEY=VALUE).
    type: dict
    default: {}
  include_dirs:
    description: Extra include directories for clang (the collection's C(files/bpf/include) is always there).
    type: list
    elements: path
    default: []
  pin_path:
    description: Directory on bpffs for this program's pins. Default C(<bpffs>/wirespeed/<interface>/<name>).
    type: path
  map_sizes:
    description:
      - Capacity (C(max_entries)) of maps of the program, by map name, set between opening and loading the object
        (libbpf's C(bpf_map__set_max_entries)) instead of the size compiled in, for example C(deny_v4) set to
        C(262144). The record keeps the sizes, so checkpoints, rollback and boot restore load the
        program with them again.
      - A size that differs from the pinned map's makes a new map (make before break, as for any changed map
        definition), and it is filled with the entries of the live map (or, on rollback, those of the checkpoint)
        before the new version is swapped in, so no entry is ever missing from the datapath. Check mode shows
        the change (RV(map_sizes), and C(max_entries) in the diff) and how many entries the new map gets
        (RV(maps_filled)).
      - More entries than a new size holds, or a size the kernel refuses (memory, C(max_entries) limits), fails the
        task with one sentence, and the running version and its maps stay as they were.
    type: dict
    default: {}
  verify:
    description: In check mode, load the program to run the verifier, then unload it.
    type: bool
    default: true
  compile_on:
    description: Where O(src) is compiled. C(auto) uses the controller when it has clang, else the host.
    type: str
    choices: [auto, controller, host]
    default: auto
  clang:
    description: Name or path of the clang binary (on the controller and on the host).
    type: str
    default: clang
"""

    # Where a host keeps its datapath: every module that reads or changes it (wirespeed.datapath.program.paths).
    PATHS = r"""
options:
  bpffs:
    description: Mount point of the BPF filesystem; mounted there when a change needs it and it is not yet.
    type: path
    default: /sys/fs/bpf
  state_dir:
    description:
      - Directory where the host keeps what wirespeed deployed, the versions before, and the checkpoints
        of M(wirespeed.datapath.datapath_checkpoint) (in its C(checkpoints) folder). Runs against one host take
        turns through a lock file there.
    type: path
    default: /var/lib/wirespeed
"""
