# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The staged rollout's decisions, over plain samples: batch sizes, drop rates, the verdict, the batch's fate."""

import pytest

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _rollout


def sample(at, dropped=0, aborted=0, **reasons):
    return {"at": at, "dropped": dropped, "aborted": aborted, "reasons": {k.replace("_", " "): v
                                                                          for k, v in reasons.items()}}


@pytest.mark.parametrize("batches,fleet,sizes_ok", [
    ([1, "10%", "100%"], 20, True), ([1, 2], 3, True), ("100%", 1000, True), ([5], 3, True), (["30%"], 3, False),
    ([1, 1], 3, False), (["50%", "50%"], 3, False),  # int(1.5) + int(1.5) = 2 of 3, as Ansible sizes them
])
def test_batches_must_reach_the_whole_fleet(batches, fleet, sizes_ok):
    if sizes_ok:
        assert _rollout.parse_batches(batches, fleet) == (batches if isinstance(batches, list) else [batches])
    else:
        with pytest.raises(ValueError, match="covers .* of the %d hosts" % fleet):
            _rollout.parse_batches(batches, fleet)


@pytest.mark.parametrize("bad", [0, -1, "0%", "101%", "12.5%", "ten", True, None, "1e3", []])
def test_batch_sizes_that_do_not_parse_are_named(bad):
    with pytest.raises(ValueError, match="wirespeed_batches"):
        _rollout.parse_batches([1, bad] if bad != [] else bad, 10)


def test_the_drop_rate_is_compared_with_the_baseline_and_names_the_reason():
    baseline = (sample(100, 1000, eth0_fw_x=1000), sample(110, 1100, eth0_fw_x=1100))  # 10/s before the change
    bake = (sample(200, 0), sample(210, 300, eth0_fw_x=300))  # a new program: counters from 0, 30/s
    ok = _rollout.judge(baseline=baseline, bake=bake, ceiling=25)
    assert ok["healthy"] and ok["increase"] == 20.0 and ok["drop_rate_before"] == 10.0
    bad = _rollout.judge(baseline=baseline, bake=bake, ceiling=15)
    assert not bad["healthy"] and bad["problems"] == ["drops rose by 20.0/s (ceiling 15/s), mostly eth0 fw x +20.0/s"]
    assert _rollout.judge(baseline=None, bake=bake, ceiling=None)["healthy"]  # no ceiling: no drop gate


def test_aborted_packets_since_the_change_make_a_host_unhealthy_even_after_a_counter_restart():
    verdict = _rollout.judge(baseline=(sample(1, aborted=5), sample(2, aborted=5)),
                             bake=(sample(3, aborted=0), sample(4, aborted=2)))
    assert not verdict["healthy"] and verdict["problems"] == ["XDP_ABORTED rose by 2 packets"]
    assert _rollout.judge(baseline=None, bake=(sample(3, aborted=7), sample(4, aborted=7)))["healthy"]


def test_a_staged_batch_with_one_unhealthy_host_is_taken_back_whole():
    verdicts = {"a": {"healthy": True}, "b": {"healthy": False}}
    staged = _rollout.decide(verdicts, ["a", "b", "c"], ["a", "b"], staged=True)
    assert staged["failed"] and staged["take_back"] == ["a", "b"] and staged["lost"] == ["c"]
    alone = _rollout.decide(verdicts, ["a", "b"], ["a", "b"], staged=False)
    assert not alone["failed"] and alone["take_back"] == ["b"]
    assert _rollout.decide({"a": {"healthy": True}}, ["a"], ["a"], staged=True)["take_back"] == []


@pytest.mark.parametrize("values,named", [
    ({"timeout": 0}, "wirespeed_confirm_timeout is 0"), ({"bake": "-1"}, "wirespeed_bake_seconds is -1"),
    ({"ceiling": "x", "bake": 5}, "wirespeed_max_drop_rate_increase is x"),
    ({"ceiling": -1, "bake": 5}, "wirespeed_max_drop_rate_increase is -1"),
    ({"ceiling": 5}, "needs a window"), ({"timeout": 30, "bake": 25}, "the bake takes 25 s"),
    ({"baseline": 0, "bake": 5}, "wirespeed_baseline_seconds is 0"),
])
def test_run_variables_are_refused_by_name(values, named):
    full = dict({"timeout": None, "probe": None, "bake": None, "ceiling": None, "reach": None, "baseline": None},
                **values)
    assert named in _rollout.problem(full, probe_is_file=False)


def test_usable_run_variables_pass():
    assert _rollout.problem({"timeout": 300, "bake": 60, "ceiling": "2.5", "probe": "p.yml"}, True) == ""
