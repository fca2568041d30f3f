"""The kernel layer: the libbpf binding, bpffs, map element operations, the XDP chain maps, interfaces (links),
XDP and TC netlink, network namespaces, the neighbour table and AF_XDP socket maps."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
