# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.compile import (
    compile_source,
    define_flags,
    find_clang,
)


def test_define_flags_sorted_and_typed():
    assert define_flags({"B": 2, "A": True, "C": False, "D": None, "E": "x"}) == [
        "-DA", "-DB=2", "-DC=0", "-DD", "-DE=x"]


@pytest.mark.parametrize("name", ["1A", "A-B", "A B", ""])
def test_define_names_must_be_identifiers(name):
    with pytest.raises(DatapathError, match="is not a C identifier"):
        define_flags({name: 1})


def test_missing_source_is_named(tmp_path):
    with pytest.raises(DatapathError, match=r"source file .*nope\.c does not exist"):
        compile_source(str(tmp_path / "nope.c"))


def test_missing_clang_is_reported_with_a_code(tmp_path):
    src = tmp_path / "x.bpf.c"
    src.write_text("int x;\n")
    with pytest.raises(DatapathError) as err:
        compile_source(str(src), clang="/nonexistent/clang-99")
    assert err.value.code == "clang_missing"
    assert find_clang("/nonexistent/clang-99") is None
