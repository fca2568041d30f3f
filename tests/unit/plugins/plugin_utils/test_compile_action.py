# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of xdp_program and tc_filter: refusing src with object, naming files as the user did."""

from ansible_collections.wirespeed.datapath.plugins.plugin_utils._compile_action import (
    ROOT_NAME,
    both_given,
    name_paths,
)

TMP = "/root/.ansible/tmp/ansible-tmp-1796207836.3005803-4665-106152314510856"


def test_src_with_object_is_one_sentence_naming_both():
    msg = both_given("wirespeed.datapath.xdp_program", {"src": "files/fw.bpf.c", "object": "fw.bpf.o"})
    assert msg.startswith("xdp_program got both src (files/fw.bpf.c) and object (fw.bpf.o)")
    assert "mutually exclusive" in msg and msg.endswith(".") and ". " not in msg
    assert both_given("wirespeed.datapath.tc_filter", {"src": "a.bpf.c"}) is None
    assert both_given("wirespeed.datapath.tc_filter", {"src": "a.bpf.c", "object": None}) is None


def test_shipped_copies_take_the_names_the_user_knows():
    names = {TMP + "/program.bpf.o": "objs/fw.bpf.o", TMP + "/wirespeed_root.bpf.o": ROOT_NAME,
             TMP + "/bpf/src": "/home/me/bpf", TMP + "/bpf/src/fw.bpf.c": "fw.bpf.c"}
    result = {"msg": "%s/program.bpf.o is not a loadable BPF object (elf: '%s/program.bpf.o' is not a proper ELF "
                     "object)" % (TMP, TMP),
              "detail": "%s/bpf/src/fw.bpf.c:9:17: error\nIn file included from %s/bpf/src/ports.h" % (TMP, TMP),
              "detail_lines": ["%s/wirespeed_root.bpf.o: bad" % TMP, 3], "changed": False}
    name_paths(result, names)
    assert result["msg"] == ("objs/fw.bpf.o is not a loadable BPF object (elf: 'objs/fw.bpf.o' is not a proper ELF "
                             "object)")
    assert result["detail"] == "fw.bpf.c:9:17: error\nIn file included from /home/me/bpf/ports.h"
    assert result["detail_lines"] == ["the wirespeed chain root (wirespeed_root.bpf.c): bad", 3]
    assert name_paths({"changed": True}, names) == {"changed": True}
