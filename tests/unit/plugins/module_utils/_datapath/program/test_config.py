# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Config values through the one type system (the codecs a `.rodata` global gets from BTF), and verifier output."""
import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.verifier import (
    load_error,
    verifier_log,
)
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types.codecs import (
    ArrayCodec,
    BoolCodec,
    CharArrayCodec,
    IntCodec,
)

U16 = IntCodec(2, name="__u16")
PORTS = ArrayCodec(U16, 3)


@pytest.mark.parametrize("codec,value,raw", [
    (U16, 8080, b"\x90\x1f"),
    (U16, "0x1f90", b"\x90\x1f"),
    (IntCodec(2, big_endian=True, name="__be16"), 8080, b"\x1f\x90"),
    (IntCodec(4, signed=True, name="int"), -2, b"\xfe\xff\xff\xff"),
    (BoolCodec(1), True, b"\x01"),
    (BoolCodec(1), "false", b"\x00"),
    (IntCodec(4, signed=True, name="enum", enum={"LOW": 1, "HIGH": 2}), "HIGH", b"\x02\x00\x00\x00"),
    (CharArrayCodec(4), "ab", b"ab\x00\x00"),
    (PORTS, [22, 2222], b"\x16\x00\xae\x08\x00\x00"),
    (PORTS, [], b"\x00" * 6),
])
def test_encode(codec, value, raw):
    assert codec.encode(value) == raw


@pytest.mark.parametrize("codec,value", [
    (U16, 65536),
    (U16, -1),
    (U16, True),
    (U16, "http"),
    (U16, 1.5),
    (BoolCodec(1), 2),
    (IntCodec(4, signed=True, name="enum", enum={"LOW": 1}), "MEDIUM"),
    (CharArrayCodec(4), "abcd"),  # no room for the NUL
    (PORTS, [1, 2, 3, 4]),  # longer than the array
    (PORTS, [70000]),
    (PORTS, 22),  # not a list
])
def test_encode_refuses(codec, value):
    with pytest.raises(ValueError):
        codec.encode(value)


def test_describe_names_range_and_type():
    assert PORTS.describe() == ("a list of at most 3 integers from 0 to 65535 (__u16[3]); the entries left "
                                "out are 0")
    assert U16.describe() == "an integer from 0 to 65535 (__u16)"
    assert IntCodec(1, signed=True, name="__s8").describe() == "an integer from -128 to 127 (__s8)"
    assert CharArrayCodec(8).describe() == "a string of at most 7 bytes (char[8])"


LIBBPF_OUTPUT = """libbpf: prog 'bad': BPF program load failed: Permission denied
libbpf: prog 'bad': -- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
; struct ethhdr *eth = (void *)(long)ctx->data;
0: (61) r1 = *(u32 *)(r1 +0)
1: (69) r1 = *(u16 *)(r1 +12)
invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0)
R1 offset is outside of the packet
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'bad': failed to load: -13
"""


def test_verifier_log_is_cut_out_of_libbpf_output():
    log = verifier_log(LIBBPF_OUTPUT)
    assert log[0] == "0: R1=ctx() R10=fp0" and log[-1].startswith("processed 2 insns")


def test_load_error_names_the_reason_not_the_statistics():
    err = load_error("/x.o", "bad", 13, LIBBPF_OUTPUT)
    assert err.message == "the kernel verifier rejected program 'bad' from /x.o: R1 offset is outside of the packet"
    assert "invalid access to packet" in err.detail


def test_load_error_without_a_verifier_log_quotes_libbpf():
    err = load_error("/x.o", "p", 1, "libbpf: map 'm': failed to create: Operation not permitted(-1)\n")
    assert err.message == "loading program 'p' from /x.o failed: map 'm': failed to create: Operation not permitted(-1)"
