"""The kernel layer: the libbpf binding, bpffs, map element operations, the XDP chain maps, XDP and TC netlink."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
