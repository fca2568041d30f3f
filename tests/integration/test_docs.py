# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-doc renders every module with its options and examples."""

import os
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.parametrize("module,words", [
    ("xdp_program", ["interface", "priority", "config", "pin_path", "force", "verify", "EXAMPLES", "prog_id"]),
    ("datapath_info", ["interfaces", "counters", "managed"]),
])
def test_ansible_doc_renders(module, words):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"),
                           "wirespeed.datapath." + module], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    for word in words:
        assert word in proc.stdout
