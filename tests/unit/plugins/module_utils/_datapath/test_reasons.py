# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import os

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import reasons

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 5))


def test_the_c_header_is_generated_from_the_table():
    with open(os.path.join(REPO, "files", "bpf", "include", "wirespeed", "reasons.h")) as fh:
        assert fh.read() == reasons.header(), "regenerate reasons.h: python -m ...reasons > reasons.h"


def test_numbers_are_dense_unique_and_start_at_none():
    numbers = [n for n, _name, _text in reasons.REASONS]
    assert numbers == list(range(len(numbers)))
    assert reasons.NAMES[0] == "none" and len(set(reasons.NAMES.values())) == len(numbers)
