# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of xdp_program and tc_filter: refusing src with object, naming files as the user did."""

from ansible_collections.wirespeed.datapath.plugins.plugin_utils._compile_action import both_given


def test_src_with_object_is_one_sentence_naming_both():
    msg = both_given("wirespeed.datapath.xdp_program", {"src": "files/fw.bpf.c", "object": "fw.bpf.o"})
    assert msg.startswith("xdp_program got both src (files/fw.bpf.c) and object (fw.bpf.o)")
    assert "mutually exclusive" in msg and msg.endswith(".") and ". " not in msg
    assert both_given("wirespeed.datapath.tc_filter", {"src": "a.bpf.c"}) is None
    assert both_given("wirespeed.datapath.tc_filter", {"src": "a.bpf.c", "object": None}) is None

