"""The latency correction fitted to real engine calls (``profile.correction``), on a recorded real profile and a
synthetic engine whose bias is known: what the fit recovers, how it predicts plans it never saw, and the profile
file that keeps it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spdy_recipes.errors import SpdyError
from spdy_recipes.profile import load_profile, save_profile
from spdy_recipes.profile.correction import EnginePoint, band_of
from spdy_recipes.profile.engine_calibration import calibration_plans
from spdy_recipes.profile.schema import CALIBRATED_FORMAT_VERSION, profile_from_dict
from spdy_recipes.solve.settings import solve

SLOW = 3  # the largest fusion blocks (by dense time) whose sparse kernels run 40% slower than the analysis says
NOISE = 0.002  # relative noise of a measured speedup (what the fit can resolve a 3-block bias under)


@pytest.fixture(scope="module")
def resnet50():
    """ResNet50's recorded profile (AVX-512; 54 layers in 38 fusion blocks, 42 levels), uncalibrated."""
    return load_profile("tests/data/profiles/avx512/resnet50.json")


def _slow_blocks(profile):
    table = profile.analysed_table()
    dense = [sum(table.times[profile.layer_names.index(n), 0] for n in block) for block in profile.blocks()]
    return sorted(range(len(dense)), key=lambda b: -dense[b])[:SLOW]


def _engine(profile, dense_scale=0.9):
    """A synthetic engine: the analysed table, sparse levels of the ``SLOW`` largest blocks 1.4 times as slow,
    every sparse level below 0.8 another 10% slower, and the whole model at ``dense_scale`` of the analysed time
    (the analysis reads dense slow). Returns (speedup of a plan, real dense ms)."""
    block_of = {name: i for i, block in enumerate(profile.blocks()) for name in block}
    slow_blocks = _slow_blocks(profile)
    table = profile.analysed_table()

    def plan_ms(levels):
        total = table.fixed_ms
        for layer, (name, level) in enumerate(zip(profile.layer_names, levels, strict=True)):
            factor = 1.0
            if level:
                factor *= 1.4 if block_of[name] in slow_blocks else 1.0
                factor *= 1.1 if band_of(profile.grid[level]) == 1 else 1.0
            total += table.times[layer, level] * factor
        return total * dense_scale

    dense_ms = plan_ms([0] * len(profile.layers))
    return (lambda levels: dense_ms / plan_ms(levels)), dense_ms


def _points(profile, speedup_of, plans, seed=0):
    rng = np.random.default_rng(seed)
    points = []
    for kind, levels, heldout in plans:
        speedup = speedup_of(levels) * (1 + NOISE * rng.standard_normal())
        points.append(EnginePoint(levels=levels, speedup=speedup, low=speedup * (1 - NOISE), high=speedup * (1 + NOISE),
                                  dense_ms=10.0, pruned_ms=10.0 / speedup, kind=kind, heldout=heldout))
    return points


def test_the_fit_recovers_a_known_per_block_and_per_band_bias(resnet50):
    speedup_of, dense_ms = _engine(resnet50)
    calibrated = resnet50.with_engine_points(_points(resnet50, speedup_of, calibration_plans(resnet50, 60)),
                                             dense_ms)
    correction = calibrated.correction
    scale = dense_ms / resnet50.analysed_table().dense_ms()
    factors = np.asarray(correction.factors) / scale  # back to the analysis' own units
    blocks = resnet50.blocks()
    high = next(k for k, s in enumerate(resnet50.grid) if s >= 0.9)
    low = next(k for k, s in enumerate(resnet50.grid) if 0 < s < 0.7)
    slow = [resnet50.layer_names.index(name) for b in _slow_blocks(resnet50) for name in blocks[b]]
    others = [i for i in range(len(resnet50.layers)) if i not in slow]
    assert np.median(factors[slow, high]) == pytest.approx(1.4, abs=0.12)
    assert np.median(factors[others, high]) == pytest.approx(1.0, abs=0.05)
    assert np.median(factors[others, low]) == pytest.approx(1.1, abs=0.05)
    assert np.median(factors[:, 0]) == pytest.approx(1.0, abs=0.05)
    assert calibrated.dense_ms == dense_ms
    error = correction.fit_error
    assert error["heldout_max"] < 0.04 and error["heldout_median"] < error["uncorrected_heldout_median"] / 3


def test_a_plan_outside_the_fit_is_predicted_within_its_stated_error(resnet50):
    """SPDY's own plans (never among the random calibration plans; the DP seeks out the entries the analysis
    reads too fast) are predicted within the error the calibration states (held-out and leave-one-out), where
    the uncorrected table is far off."""
    speedup_of, dense_ms = _engine(resnet50)
    calibrated = resnet50.with_engine_points(_points(resnet50, speedup_of, calibration_plans(resnet50, 30)),
                                             dense_ms)
    error = calibrated.correction.fit_error
    stated = max(error["heldout_max"], error["loo_max"])
    for target in (1.3, 1.5, 2.0):
        plan = solve(calibrated, target)
        levels = tuple(plan.levels[name] for name in calibrated.layer_names)
        truth = speedup_of(levels)
        assert abs(plan.predicted_speedup / truth - 1) <= stated, (target, plan.predicted_speedup, truth)
        uncorrected = resnet50.predicted_speedup(plan.levels)
        assert abs(uncorrected / truth - 1) > 2 * abs(plan.predicted_speedup / truth - 1)


def test_a_calibrated_profile_round_trips_and_older_ones_load_uncalibrated(resnet50, tmp_path):
    speedup_of, dense_ms = _engine(resnet50)
    calibrated = resnet50.with_engine_points(_points(resnet50, speedup_of, calibration_plans(resnet50, 6)),
                                             dense_ms)
    path = save_profile(calibrated, tmp_path / "p.json")
    data = json.loads(path.read_text())
    assert data["format_version"] == CALIBRATED_FORMAT_VERSION and len(data["calibration"]["points"]) == 10
    reloaded = load_profile(path)
    assert reloaded.to_dict() == calibrated.to_dict() and reloaded.content_hash() == calibrated.content_hash()
    assert reloaded.calibrated and "calibrated on 10 plans timed with real engine calls" in reloaded.calibration_label()
    plan = solve(reloaded, 1.5)
    assert plan.predicted_speedup == pytest.approx(solve(calibrated, 1.5).predicted_speedup, rel=1e-4)  # (rounded)
    assert not resnet50.calibrated and resnet50.calibration_label().startswith("uncalibrated")
    assert resnet50.format_version == 2  # a stored older profile, read as it is
    del data["calibration"]
    with pytest.raises(SpdyError, match="needs 'calibration'"):
        profile_from_dict(data)
    data["calibration"] = {"points": [{"levels": [0], "speedup": 1.2}], "correction": {}}
    with pytest.raises(SpdyError, match="'calibration' is malformed"):
        profile_from_dict(data)


def test_the_calibration_plans_hold_uniform_levels_and_per_block_mixes_some_held_out(resnet50):
    plans = calibration_plans(resnet50, 12)
    assert [kind for kind, _, _ in plans].count("uniform") == 4 and len(plans) == 16
    assert sum(heldout for _, _, heldout in plans) == 4
    position = {name: i for i, name in enumerate(resnet50.layer_names)}
    for _kind, levels, _ in plans:
        for block in resnet50.blocks():
            assert len({levels[position[name]] for name in block}) == 1  # a fusion block shares its level
    mixes = [levels for kind, levels, _ in plans if kind == "random"]
    assert all(0 in levels and len(set(levels)) > 2 for levels in mixes)
    assert calibration_plans(resnet50, 12) == plans  # seeded


def test_the_committed_calibrated_profile_refits_to_its_own_correction_and_says_what_backs_it(tmp_path):
    """The named-hardware MobileNetV2 profile measured with calibration: its correction is what its own points
    give (the fit is deterministic), and a recipe solved on it names that calibration in its header."""
    from spdy_recipes.entrypoints.generate import unverified_evidence

    path = "recipes/hardware/xeon-avx512-2core/torchvision-mobilenet_v2-bs16-c2.json"
    profile = load_profile(path)
    assert profile.calibrated and profile.format_version == CALIBRATED_FORMAT_VERSION
    again = profile.without_calibration().with_engine_points(profile.engine_points, profile.correction.dense_ms)
    assert np.allclose(again.correction.factors, profile.correction.factors, atol=1e-5)
    assert again.correction.intercept_ms == pytest.approx(profile.correction.intercept_ms, abs=1e-4)  # (stored rounded)
    assert again.correction.fit_error == profile.correction.fit_error
    assert "the profile is calibrated on 16 plans timed with real engine calls" in unverified_evidence(profile)
    plan = solve(profile, 1.5)
    analysed = profile.without_calibration()
    assert plan.predicted_speedup == pytest.approx(profile.predicted_speedup(plan.levels))
    assert plan.predicted_speedup != pytest.approx(analysed.predicted_speedup(plan.levels), rel=1e-3)


def test_a_correction_fitted_by_an_older_form_is_refitted_to_its_points_when_loaded():
    """A profile calibrated before the analysed table was smoothed across levels (a correction without
    ``model``, i.e. form 1) holds factors for the raw table; used on the smoothed one they would mispredict.
    Loading refits them to the stored real-call points, and a hand-made 'model' is checked."""
    data = json.loads(Path("recipes/hardware/xeon-avx512-2core/torchvision-mobilenet_v2-bs16-c2.json").read_text())
    current = profile_from_dict(json.loads(json.dumps(data)))
    old = data["calibration"]["correction"]
    del old["model"]
    old["factors"] = [[f * 1.3 for f in row] for row in old["factors"]]  # what no fit on these points gives
    refitted = profile_from_dict(data)
    assert refitted.correction.current and refitted.correction.model == current.correction.model == 2
    assert np.allclose(refitted.correction.factors, current.correction.factors, atol=1e-5)
    plan = solve(current, 1.5).levels
    assert refitted.predicted_speedup(plan) == pytest.approx(current.predicted_speedup(plan), rel=1e-4)
    old["model"] = "two"
    with pytest.raises(SpdyError, match="'model' holds 'two'"):
        profile_from_dict(data)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["correction"]["fit_error"].update(heldout_median="x"), "'fit_error' must map names to finite"),
    (lambda c: c["correction"].update(intercept_ms=float("nan")), "'intercept_ms' holds nan"),
    (lambda c: c["correction"].update(intercept_ms=-100), "'intercept_ms' holds -100"),
    (lambda c: c["correction"].update(dense_ms=-45.7), "'dense_ms' holds -45.7"),
    (lambda c: c.update(points=[]), "its 'points' must be a non-empty list"),
    (lambda c: c["points"][0].update(levels=[30.7] * len(c["points"][0]["levels"])), "must list a whole grid level"),
    (lambda c: c["points"][0].update(speedup="fast"), "'speedup' holds 'fast'"),
    (lambda c: c["points"].__setitem__(0, "a plan"), "a calibration point must be an object"),
])
def test_a_hand_edited_calibration_block_is_one_clear_error(edit, message):
    data = json.loads(Path("recipes/hardware/xeon-avx512-2core/torchvision-mobilenet_v2-bs16-c2.json").read_text())
    edit(data["calibration"])
    with pytest.raises(SpdyError, match="'calibration' is malformed: ") as caught:
        profile_from_dict(data)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_calibration_block_needs_format_version_4_and_bad_verify_points_are_refused(resnet50):
    data = json.loads(Path("recipes/hardware/xeon-avx512-2core/torchvision-mobilenet_v2-bs16-c2.json").read_text())
    data["format_version"] = 2
    with pytest.raises(SpdyError, match="'calibration' needs format_version 4, not 2"):
        profile_from_dict(data)
    point = {"levels": [1] * len(resnet50.layers), "speedup": 1.2, "low": 1.19, "high": 1.21, "dense_ms": 250.0,
             "pruned_ms": 208.0, "kind": "verify", "heldout": False}
    assert len(resnet50.recorded_points([point])) == 1
    for bad, message in [({**point, "heldout": True}, "kind 'verify', not held out"),
                         ({**point, "levels": [1, 2]}, "for each of the 54 layers"),
                         ("not a point", "a calibration point must be an object")]:
        with pytest.raises(SpdyError, match="verify_points") as caught:
            resnet50.recorded_points([bad])
        assert message in str(caught.value)
    with pytest.raises(SpdyError, match="they must be a list"):
        resnet50.recorded_points({"levels": []})
