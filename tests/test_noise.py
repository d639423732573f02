"""Noise handling on a recorded profile: medians, conservative quantiles, flags, and the solver's bound."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from spdy_recipes.profile import load_profile, save_profile
from spdy_recipes.profile.flags import profile_flags
from spdy_recipes.profile.noise import smoothed_across_levels
from spdy_recipes.profile.schema import profile_from_dict
from spdy_recipes.report import profile_report
from spdy_recipes.solve.settings import SolveSettings, solve


def test_recorded_profile_keeps_every_repeat(cnn_profile, tmp_path):
    profile, _ = cnn_profile
    assert profile.repeats == 3 and profile.engine["repeats"] == 3
    for layer in profile.layers:
        assert all(len(level) == 3 for level in layer.samples_ms)
        assert layer.times_ms == smoothed_across_levels([float(np.median(level)) for level in layer.samples_ms])
        assert layer.times(1.0) == smoothed_across_levels([max(level) for level in layer.samples_ms])
        assert all(lo <= mid <= hi
                   for lo, mid, hi in zip(layer.times(0.0), layer.times_ms, layer.times(0.9), strict=True))
    assert profile.engine["call_overhead_ms"] >= 0
    copy_path = tmp_path / "copy.json"
    save_profile(profile, copy_path)
    assert load_profile(copy_path).content_hash() == profile.content_hash()


def test_a_one_level_outlier_is_smoothed_away_and_a_trend_is_kept():
    # dense first; a low outlier at the third sparse level (what the DP would pick), a rising tail (kept)
    row = [10.0, 8.0, 7.0, 1.0, 6.0, 5.0, 5.5, 6.5]
    smoothed = smoothed_across_levels(row)
    assert smoothed[0] == 10.0  # the dense level is never mixed with sparse ones
    assert smoothed[3] == 6.0  # the outlier takes its neighbours' median
    assert smoothed[1:3] == [8.0, 7.0] and smoothed[-2:] == [5.5, 6.5]  # ends and a rising trend stay
    assert smoothed_across_levels([3.0, 2.0, 9.0]) == [3.0, 2.0, 9.0]  # two sparse levels: nothing to smooth


@pytest.mark.parametrize("quantile", [0.5, 0.9, 1.0])
def test_plans_fit_the_budget_on_their_quantile(cnn_profile, quantile):
    profile, _ = cnn_profile
    target = 1 + 0.5 * (solve(profile, 1.0001).max_speedup - 1)
    plan = solve(profile, target, SolveSettings(quantile=quantile))
    by_name = {layer.name: layer for layer in profile.layers}
    bound = profile.fixed(quantile) + sum(
        by_name[name].times(quantile)[profile.grid.index(s)] for name, s in plan.sparsities.items())
    assert bound == pytest.approx(plan.bound_ms)
    assert bound <= profile.dense_ms / target * (1 + 1e-9)
    assert plan.predicted_speedup >= plan.guaranteed_speedup - 1e-9 or quantile < 0.5


def _with_lucky_sample(profile, layer_index, level):
    """A copy where one repeat of one layer at one level measured far faster than the others."""
    data = copy.deepcopy(profile.to_dict())
    samples = data["layers"][layer_index]["samples_ms"][level]
    data["layers"][layer_index]["samples_ms"][level] = [min(samples) * 0.05, *sorted(samples)[1:]]
    return profile_from_dict(data)


def test_a_lucky_measurement_does_not_make_a_layer_look_fast(cnn_profile):
    profile, _ = cnn_profile
    level = len(profile.grid) - 1
    lucky = _with_lucky_sample(profile, 1, level)
    layer, original = lucky.layers[1], profile.layers[1]
    assert layer.times(0.0)[level] < 0.1 * original.times(0.0)[level]  # the outlier is there
    assert layer.times_ms[level] == pytest.approx(original.times_ms[level])  # the median ignores it
    assert layer.times(0.9)[level] >= original.times_ms[level]  # the planning time too


def test_flags_find_bumps_switches_and_noisy_levels(cnn_profile):
    profile, _ = cnn_profile
    data = copy.deepcopy(profile.to_dict())
    bumped = data["layers"][2]
    bumped["samples_ms"][2] = [t * 3 + 1.0 for t in bumped["samples_ms"][1]]  # sparser but much slower
    bumped["kernels"] = ["dense"] * 3 + ["sparse"] * (len(profile.grid) - 3)
    total = data["total_samples_ms"][4]
    data["total_samples_ms"][4] = [total[0], total[0] * 1.3, total[0]]
    edited = profile_from_dict(data)
    flags = profile_flags(edited.layers, edited.level_spread())
    assert 2 in flags["non_monotone"][bumped["name"]]
    assert flags["kernel_switch"][bumped["name"]] == [3]
    assert 4 in flags["noisy_levels"]
    json.dumps(flags)  # recorded in the profile as JSON
    assert set(profile.flags) == {"non_monotone", "kernel_switch", "noisy_levels"}


def test_inspect_shows_noise_and_flags(cnn_profile):
    profile, _ = cnn_profile
    report = profile_report(profile)
    assert f"{profile.repeats} repeat(s)" in report and "flags:" in report and "call overhead" in report
    assert "max spread ms" in report and "kernel switches at" in report
