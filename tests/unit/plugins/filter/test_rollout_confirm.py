# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The commit-confirmed run variables site.yml refuses before any host changes, fed to the filter it refuses them
with (wirespeed.datapath._rollout_problem) as site.yml builds its argument; test_lockout.py keeps two of these
cases end to end to prove the wiring."""

import pytest

from ansible_collections.wirespeed.datapath.plugins.filter.rollout import FilterModule

PROBLEM = FilterModule().filters()["_rollout_problem"]


def site_values(**given):
    """The dict site.yml's "Check the run's own variables" task hands the filter: None for what is not set."""
    return dict({"timeout": None, "probe": None, "bake": None, "ceiling": None, "reach": None, "baseline": None},
                **given)


@pytest.mark.parametrize("values,probe_is_file,message", [
    ({"timeout": 0}, False, "wirespeed_confirm_timeout is 0; give whole seconds from 1 to 86400"),
    ({"timeout": "soon"}, False, "wirespeed_confirm_timeout is soon; give whole seconds"),
    ({"timeout": 90000}, False, "wirespeed_confirm_timeout is 90000; give whole seconds"),
    ({"timeout": 30, "probe": "/nonexistent/probe.yml"}, False,
     "wirespeed_health_probe /nonexistent/probe.yml is not a file on the controller"),
])
def test_bad_confirm_variables_are_refused_by_name(values, probe_is_file, message):
    assert message in PROBLEM(site_values(**values), probe_is_file)


@pytest.mark.parametrize("values", [{"timeout": 1}, {"timeout": 86400}, {"timeout": "120"},
                                    {"timeout": 30, "probe": "probe.yml"}])
def test_usable_confirm_variables_pass(values):
    assert PROBLEM(site_values(**values), True) == ""
