# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""src: wirespeed.datapath:<name> resolves to the programs shipped in files/bpf, and an unknown name is refused
with the list of the shipped ones."""

import os

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _compile_action as action


@pytest.mark.parametrize("src,tail", [
    ("wirespeed.datapath:firewall.bpf.c", "files/bpf/firewall.bpf.c"),
    ("wirespeed.datapath:drop_port.bpf.c", "files/bpf/examples/drop_port.bpf.c"),
    ("wirespeed.datapath:examples/drop_port.bpf.c", "files/bpf/examples/drop_port.bpf.c"),
])
def test_a_shipped_name_is_the_file_in_the_collection(src, tail):
    path = action.shipped_program(src)
    assert path.endswith(tail) and os.path.isfile(path)


@pytest.mark.parametrize("src", ["wirespeed.datapath:nope.bpf.c", "wirespeed.datapath:", "wirespeed.datapath:../x"])
def test_an_unknown_name_is_refused_with_the_shipped_ones(src):
    with pytest.raises(DatapathError) as err:
        action.shipped_program(src)
    message = err.value.message
    assert message.startswith("src %s names no program shipped with wirespeed.datapath" % src)
    assert "firewall.bpf.c" in message and "examples/drop_port.bpf.c" in message and message.count(". ") == 0
    assert "wirespeed_root.bpf.c" not in message  # the chain root is not a program to deploy
