"""The datapath engine: compile, load, pin, attach, chain and record BPF programs.

This package is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
Nothing in it knows about Ansible; modules and action plugins hand their arguments in and turn
DatapathError into a failed task. The layers, bottom up: kernel/ (libbpf, bpffs, maps, netlink),
types/ (BTF to codecs), program/ (compile, open, configure, load), record/ (what a host
remembers), hooks/ (one Hook per attach point), then mapsync, checkpoint and info on top.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
