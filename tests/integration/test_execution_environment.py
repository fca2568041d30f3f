# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An execution environment from docs/execution-environment.yml: ansible-builder's context installs the
collection's run-time system packages (clang first of all) in the image's final stage, not only the builder's.

Building the image needs a container runtime, which this machine has not (the docker client without an engine);
this checks the two halves the build joins: the Containerfile's final stage installs what bindep lists for the
default profile, and the collection's bindep, as ansible-builder introspects it, lists clang there for rpm and
dpkg images."""

import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

BUILDER = os.path.join(os.path.dirname(sys.executable), "ansible-builder")
EXAMPLE = os.path.join(REPO, "docs", "execution-environment.yml")
RUNTIME = ["clang", "llvm"]


@pytest.fixture(scope="module")
def builder():
    if not os.path.exists(BUILDER):
        pytest.fail("ansible-builder is not in %s; run `make deps` (requirements-dev.txt lists it)."
                    % os.path.dirname(sys.executable))
    return BUILDER


def _profiles(line):
    """(package, platforms, profiles) of one bindep line."""
    m = re.match(r"^\s*([^\s#\[]+)\s*(?:\[([^\]]*)\])?", line)
    tags = (m.group(2) or "").split()
    platforms = {t for t in tags if t.startswith("platform:")}
    return m.group(1), platforms, set(tags) - platforms


def test_introspected_bindep_keeps_the_compiler_for_the_final_image(builder, tmp_path):
    out = tmp_path / "bindep.txt"
    proc = subprocess.run([builder, "introspect", "--sanitize", "--write-bindep", str(out),
                           os.path.join(REPO, "build", "collections")], capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in out.read_text().splitlines() if line.strip() and "wirespeed.datapath" in line]
    entries = {}
    for line in lines:
        name, platforms, profiles = _profiles(line)
        entries.setdefault(name, []).append((platforms, profiles))
    for package in RUNTIME + ["libbpf-devel", "libbpf-dev", "libbpf", "libbpf1"]:
        assert package in entries, (package, lines)
        for _platforms, profiles in entries[package]:
            assert not profiles, "%s is tagged %s, so the final image would not get it" % (package, profiles)
    for package in RUNTIME:
        platforms = set().union(*(found for found, _profiles in entries[package]))
        assert {"platform:rpm", "platform:dpkg"} <= platforms, (package, platforms)
    assert all(profiles == {"test"} for _platforms, profiles in entries["tcpdump"])  # the tests' packages stay out


def test_created_context_installs_bindep_packages_in_the_final_stage(builder, tmp_path):
    context = tmp_path / "context"
    proc = subprocess.run([builder, "create", "-f", EXAMPLE, "-c", str(context), "--output-filename",
                           "Containerfile"], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stages = re.split(r"(?m)^FROM ", (context / "Containerfile").read_text())[1:]
    assert len(stages) >= 3, stages  # base, galaxy, builder, final
    builder_stage = [s for s in stages if "scripts/assemble" in s]
    assert builder_stage, "no stage runs assemble (which writes the bindep list for the final stage)"
    final = stages[-1]
    assert "install-from-bindep" in final, final
    assert "COPY --from=builder /output/ /output/" in final, final
    with open(context / "_build" / "requirements.yml") as fh:
        galaxy = yaml.safe_load(fh)
    assert [c["name"] for c in galaxy["collections"]] == ["wirespeed.datapath"]
    with open(EXAMPLE) as fh:
        example = yaml.safe_load(fh)
    assert example["images"]["base_image"]["name"].split("/")[-1].startswith("fedora")  # an rpm image
