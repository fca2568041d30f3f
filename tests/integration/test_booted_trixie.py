# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tests of test_booted_hosts.py on Debian 13 (trixie) hosts: its systemd 257, Python 3.13, pyroute2 0.7.7
and libbpf 1.5 (a file of its own, so that `make test` runs it beside the bookworm one)."""

import pytest
from labplay import booting_lab

# the same tests, collected here against trixie hosts
from test_booted_hosts import *  # noqa: F403 pylint: disable=wildcard-import,unused-wildcard-import


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with booting_lab(tmp_path_factory, "trixie", 1, "trixie") as fleet:
        yield fleet
