# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xsks: the xdp_diag answer parsed from bytes as the kernel lays them out, and the probe's instructions."""

import struct

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import xsks


def attr(kind, payload):
    return struct.pack("HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def message(kind, body):
    return struct.pack("IHHII", 16 + len(body), kind, 2, 1, 0) + body


def socket_msg(inode, ifindex, queue, uid=1000, dropped=3):
    stats = struct.pack("6Q", dropped, 0, 0, 1, 0, 0)
    body = struct.pack("BBHI8x", 44, 3, 0, inode) + attr(xsks.XDP_DIAG_INFO, struct.pack("II", ifindex, queue)) \
        + attr(xsks.XDP_DIAG_UID, struct.pack("I", uid)) + attr(xsks.XDP_DIAG_STATS, stats)
    return message(xsks.SOCK_DIAG_BY_FAMILY, body)


def test_two_sockets_then_done():
    data = socket_msg(11, 4, 0) + socket_msg(12, 4, 2, uid=0, dropped=0) + message(xsks.NLMSG_DONE, b"\0" * 4)
    found, done = xsks.parse(data)
    assert done
    assert [(s["inode"], s["ifindex"], s["queue"], s["uid"], s["rx_dropped"]) for s in found] == [
        (11, 4, 0, 1000, 3), (12, 4, 2, 0, 0)]
    assert found[0]["fill_ring_empty"] == 1


def test_a_kernel_without_xdp_diag_is_none_not_an_error():
    assert xsks.parse(message(xsks.NLMSG_ERROR, struct.pack("i", -2) + b"\0" * 16)) == (None, True)


def test_another_refusal_is_one_sentence():
    with pytest.raises(DatapathError, match=r"refused to list AF_XDP sockets \(Permission denied\)"):
        xsks.parse(message(xsks.NLMSG_ERROR, struct.pack("i", -13) + b"\0" * 16))


def test_the_probe_is_seventeen_instructions_with_the_map_in_its_wide_load():
    insns = xsks.probe_insns(77)
    assert len(insns) == 17 * 8
    code, regs, _off, imm = struct.unpack_from("<BBhi", insns, 9 * 8)
    assert (code, regs, imm) == (0x18, 0x11, 77)  # r1 = map fd 77 (BPF_PSEUDO_MAP_FD)
    assert struct.unpack_from("<BBhi", insns, 4 * 8)[2] == 10  # the bounds check jumps to "absent"
