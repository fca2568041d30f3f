"""The datapath engine: compile, load, pin, attach, chain and record BPF programs.

This package is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
Nothing in it knows about Ansible; modules and action plugins hand their arguments in and turn
DatapathError into a failed task. The layers, bottom up (a module imports only from its own
layer or the ones below; tests/unit/plugins/test_import_layers.py fails on a circle or an
import that runs up):

    errors.py     the one DatapathError; reasons.py  the drop reasons shared with the C side
    kernel/       libbpf binding, bpffs, map ops, chain maps, links (interfaces), XDP and TC
                  netlink, network namespaces, neighbours, AF_XDP socket maps
    types/        BTF to codecs (addresses, CIDRs, ports, MACs, structs), a map's key and value
                  types, and the parsers the controller's filters share (name or number, CIDR)
    program/      compile, open, .rodata config, load, fingerprint, verifier log
    record/       what a host remembers about a program (Record) and its state directory
    hooks/        one Hook per attach point (the XDP chain, TC clsact)
    facts.py      what the host offers (kernel, drivers, queues, the controller's address)
    indexes/      indexes a program keeps over its lists (ListIndex), found from its maps: the
                  firewall's prefilter (a /24 bitmap in front of its deny lists) and the /16 bitmap
                  in front of allow lists
    denyhits.py   the firewall's deny hit counters: an entry's counter slot resolved to per-CPU counts
    mapsync.py    make a pinned map hold the entries asked for
    keycache.py   the key set last synced into a list map, with the proof that the map still holds it
    keybuf.py     long address lists as the map's own key bytes: the packed transfer a sync writes as it is
    carry.py      make before break: the maps a new version creates, filled before it goes live
    info.py       what runs on the host's interfaces, with counters and problems
    checkpoint.py begin / commit / rollback of the host's whole datapath
    apply.py      a host's whole intent in one call: every program and its maps, entries packed
    host/         what runs on the managed host without Ansible: the host tool's command line
                  (cli), the zipapp (tool), systemd units, boot restore, commit-confirmed timer,
                  metrics and the flow agent
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
