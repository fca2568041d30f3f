# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml's refusal of a staged run's own variables, through the filters it calls (_rollout_batches for the
play's serial, _rollout_problem for its first pre-task), with the values -e gives them on a fleet of three hosts.
tests/integration/test_rollout.py keeps one run per variable end to end to prove site.yml's wiring."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.wirespeed.datapath.plugins.filter.rollout import rollout_batches, rollout_problem

FLEET = 3  # the lab of test_rollout.py: ansible_play_hosts_all | length

# (the -e values, the sentence the user must read); site.yml's serial gets wirespeed_batches, else wirespeed_serial
BATCHES = [
    ({"wirespeed_batches": "abc"}, "wirespeed_batches has 'abc', which is neither a number of hosts"),
    ({"wirespeed_batches": [1, 0]}, "wirespeed_batches has 0, which is neither"),
    ({"wirespeed_batches": [1, "12.5%"]}, "wirespeed_batches has '12.5%'"),
    ({"wirespeed_batches": [1, 1]}, "wirespeed_batches [1, 1] covers 2 of the 3 hosts of this run"),
    ({"wirespeed_batches": "[1, 1]"}, "wirespeed_batches [1, 1] covers 2 of the 3 hosts of this run"),
    ({"wirespeed_batches": "[1, 1"}, "wirespeed_batches has '[1, 1'"),
    ({"wirespeed_serial": "soon"}, "wirespeed_serial has 'soon'"),
]

# site.yml's pre-task hands these over by short name
NAMES = {"wirespeed_confirm_timeout": "timeout", "wirespeed_health_probe": "probe", "wirespeed_bake_seconds": "bake",
         "wirespeed_max_drop_rate_increase": "ceiling", "wirespeed_confirm_reach_timeout": "reach",
         "wirespeed_baseline_seconds": "baseline"}
PROBLEMS = [
    ({"wirespeed_bake_seconds": -1}, "wirespeed_bake_seconds is -1; give whole seconds from 0 to 86400"),
    ({"wirespeed_bake_seconds": 5, "wirespeed_max_drop_rate_increase": "many"},
     "wirespeed_max_drop_rate_increase is many; give the drops per second"),
    ({"wirespeed_max_drop_rate_increase": 10}, "wirespeed_max_drop_rate_increase needs a window"),
    ({"wirespeed_health_probe": "/nonexistent/probe.yml"},
     "wirespeed_health_probe /nonexistent/probe.yml is not a file on the controller"),
    ({"wirespeed_confirm_timeout": 20, "wirespeed_bake_seconds": 15},
     "wirespeed_confirm_timeout is 20 but the bake takes 15 s"),
]


def serial(extra):
    """site.yml's serial expression, as the play computes it before any task."""
    name = "wirespeed_batches" if "wirespeed_batches" in extra else "wirespeed_serial"
    return rollout_batches(extra.get("wirespeed_batches", extra.get("wirespeed_serial", "100%")), FLEET, name)


def problem(extra, probe_is_file=False):
    return rollout_problem({short: extra.get(name) for name, short in NAMES.items()}, probe_is_file)


@pytest.mark.parametrize("extra,message", BATCHES)
def test_bad_batches_are_refused_in_one_sentence_naming_the_variable(extra, message):
    with pytest.raises(AnsibleFilterError) as refused:
        serial(extra)
    said = str(refused.value)
    assert message in said and said.count(message) == 1, said
    assert problem(extra) == ""  # the batches alone are the serial's business, not the pre-task's


@pytest.mark.parametrize("extra,message", PROBLEMS)
def test_bad_gate_variables_are_refused_in_one_sentence_naming_the_variable(extra, message):
    said = problem(extra)
    assert message in said and said.endswith("."), said
    assert serial(extra) == ["100%"]  # the serial lets them through to the pre-task, which stops the run


def test_usable_batches_and_gate_variables_pass_both_checks():
    extra = {"wirespeed_batches": [1, "50%", "100%"], "wirespeed_bake_seconds": 1,
             "wirespeed_max_drop_rate_increase": 20, "wirespeed_confirm_timeout": 30}
    assert serial(extra) == [1, "50%", "100%"]
    assert serial({"wirespeed_batches": '[1, "100%"]'}) == [1, "100%"]  # -e 'wirespeed_batches=[...]' is a string
    assert problem(extra) == ""
    assert problem({"wirespeed_health_probe": "probe.yml"}, probe_is_file=True) == ""
