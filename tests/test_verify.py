"""verify and generate --verify on a small model: decisions on recorded profiles, measurements in DeepSparse here."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from spdy_recipes.emit import read_recipe
from spdy_recipes.pipeline import best_reachable, solve
from spdy_recipes.verify import MachineTooBusy, Round, SpeedupMeasurement, meet_target
from spdy_recipes.verify.loop import corrected_speedup, meets, next_solve_speedup

from .cli_helpers import CNN_ARGS, assert_clean_failure, measured_speedup, run_cli
from .conftest import halfway, require_speedup

VERIFY_ARGS = ["--model", CNN_ARGS[1], "--input-shape", "3,128,128", "--rounds", "6"]


def _set_metadata(path, **values):
    text = path.read_text()
    for key, value in values.items():
        text, count = re.subn(rf"^  {key}: .*$", f"  {key}: {value}", text, flags=re.M)
        assert count == 1, key
    path.write_text(text)


def _metadata(path):
    return read_recipe(path).metadata


def _generate(profile_path, target, out):
    code, _, stderr = run_cli(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", target, "-o", out])
    assert code == 0, stderr
    return out


@pytest.fixture
def recipe(cnn_profile, tmp_path):
    """A recipe solved on the recorded profile, halfway to its best reachable speedup."""
    profile, profile_path = cnn_profile
    target = round(halfway(profile), 2)
    return _generate(profile_path, target, tmp_path / "recipe.yaml"), target


def test_verify_reports_and_exits_by_the_measurement(recipe):
    """Whatever this machine measures (the speedup itself is the benchmarks' business), verify prints it with
    the target and exits 0 exactly when it meets the target."""
    path, target = recipe
    code, stdout, stderr = run_cli(["verify", path, *VERIFY_ARGS])
    measured = measured_speedup(stdout)
    assert f"target {target:.3f}x" in stdout and "predicted" in stdout and "batch 8" in stdout
    assert measured > 0 and (code == 0) == meets(measured, target, 0.0), stdout + stderr


def test_verify_fails_a_target_the_machine_cannot_reach_and_fix_says_so(recipe, cnn_profile):
    path, _ = recipe
    _set_metadata(path, target_speedup=50.0, cpu_model='"Some Other CPU"')
    before = path.read_text()
    code, stdout, stderr = run_cli(["verify", path, *VERIFY_ARGS])
    assert code == 1 and "SHORT" in stdout and "below the target 50.000x" in stderr
    assert "warning:" in stderr and "Some Other CPU" in stderr
    _, profile_path = cnn_profile
    message = assert_clean_failure(["verify", path, *VERIFY_ARGS, "--fix", "--hw", profile_path], "infeasible")
    assert "speedup 50.000x" in message and "best reachable" in message
    assert path.read_text() == before


def test_verify_fix_meets_the_target_or_fails_cleanly(measured_cnn_profile, tmp_path):
    """--fix on this machine's own profile, for a target above what the first plan measures: either a
    rewritten recipe whose measurement meets it, or a clean error with the recipe untouched."""
    profile, profile_path = measured_cnn_profile
    best = require_speedup(profile)
    path = _generate(profile_path, halfway(profile, 0.4), tmp_path / "recipe.yaml")
    code, stdout, _ = run_cli(["verify", path, *VERIFY_ARGS])
    # above what the first plan measured, within the profile's reach, and above the plan's own target (a busy
    # machine may measure the first plan below 1.0x)
    target = round(max(min(measured_speedup(stdout) * 1.08, 1 + 0.85 * (best - 1)), 1 + 0.5 * (best - 1)), 3)
    _set_metadata(path, target_speedup=target)
    before = path.read_text()
    code, stdout, stderr = run_cli(["verify", path, *VERIFY_ARGS, "--fix", "--hw", profile_path, "--max-rounds", 3])
    if code == 0 and "fixed" in stdout:
        metadata = _metadata(path)
        assert metadata["measured_speedup"] >= target and metadata["solve_speedup"] >= target
        assert metadata["target_speedup"] == target
    elif code == 0:  # this time the first plan measured up already: nothing to fix
        assert ": OK" in stdout and path.read_text() == before
    else:  # the engine could not be pushed far enough on this (possibly busy) machine
        assert any(reason in stderr for reason in ("stays below", "cannot meet", "infeasible", "too busy")), stderr
        assert path.read_text() == before


def test_generate_verify_writes_only_a_recipe_that_measured_up(measured_cnn_profile, tmp_path):
    profile, profile_path = measured_cnn_profile
    require_speedup(profile)
    target = halfway(profile, 0.4)
    out = tmp_path / "verified.yaml"
    code, stdout, stderr = run_cli(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", target, "--verify",
                                    "--rounds", 6, "-o", out])
    if code == 0:
        assert "measured" in stdout and "[verify] round 1" in stderr
        assert _metadata(out)["measured_speedup"] >= target
    else:
        assert not out.exists() and "error:" in stderr


def test_in_context_times_correct_the_table_and_steer_the_next_solve(cnn_profile):
    profile, _ = cnn_profile
    target = 1 + 0.5 * (best_reachable(profile) - 1)
    plan = solve(profile, target)
    slower = {name: ms * 1.2 for name, ms in plan.times_ms.items()}  # every layer 20% slower in context
    assert corrected_speedup(plan, slower) < plan.predicted_speedup
    context = {name: {plan.levels[name]: ms} for name, ms in slower.items()}
    corrected = solve(profile, target, context=context)
    assert corrected.corrections == len(context)
    for name, level in corrected.levels.items():  # measured levels are used as measured
        if level == plan.levels[name]:
            assert corrected.times_ms[name] == pytest.approx(slower[name])
    assert corrected.bound_ms <= profile.dense_ms / target * (1 + 1e-9)
    measurement = SpeedupMeasurement(100.0, 100.0 / (target * 0.9), 10)
    short = Round(plan, measurement, plan.predicted_speedup)
    explained = next_solve_speedup(short, slower, target, repeated_plan=False)
    assert explained >= target and explained == pytest.approx(
        target * max(1.0, corrected_speedup(plan, slower) / measurement.speedup) * 1.005)
    assert next_solve_speedup(short, slower, target, repeated_plan=True) == pytest.approx(
        plan.solve_speedup / 0.9 * 1.005)
    assert meets(1.98, 2.0, 0.01) and not meets(1.97, 2.0, 0.01)


class ScriptedTimer:
    """Stands in for PlanTimer where timing is not the point: hands out the given measurements in turn (the
    in-context times are the plan's own table times) and records what it was asked to measure."""

    def __init__(self, profile, measurements):
        self.profile, self.measurements, self.measured = profile, list(measurements), []

    def export_pruned(self, sparsities):
        return dict(sparsities)

    def measure_onnx(self, pruned):
        self.measured.append(pruned)
        return self.measurements.pop(0)

    def in_context_times(self, pruned):
        by_name = {layer.name: layer for layer in self.profile.layers}
        return {name: by_name[name].times_ms[self.profile.grid.index(s)] for name, s in pruned.items()}


def _measurement(speedup, busy=0.0):
    return SpeedupMeasurement(100.0, 100.0 / speedup, 10, speedup * 0.99, speedup * 1.01, busy)


@pytest.fixture
def no_pause(monkeypatch):
    monkeypatch.setattr("spdy_recipes.verify.loop.BUSY_WAIT_S", 0.0)


def test_a_wildly_off_measurement_is_measured_again_before_it_is_used(cnn_profile, no_pause):
    profile, _ = cnn_profile
    target = halfway(profile)
    plan = solve(profile, target)
    # the first measurement says the plan is barely faster than dense; the re-measurement agrees with the model
    timer = ScriptedTimer(profile, [_measurement(1.01), _measurement(plan.predicted_speedup)])
    lines = []
    rounds = meet_target(lambda s, c: solve(profile, target, solve_speedup=s, context=c), timer, target, 0.0, 4,
                         lines.append, plan)
    assert len(rounds) == 1 and len(timer.measured) == 2 and timer.measured[0] == timer.measured[1]
    assert rounds[0].measurement.speedup == pytest.approx(plan.predicted_speedup)
    assert any("measuring again before acting on it" in line for line in lines)


def test_a_busy_machine_is_waited_out_or_named(cnn_profile, no_pause):
    profile, _ = cnn_profile
    target = halfway(profile)
    plan = solve(profile, target)
    solver = lambda s, c: solve(profile, target, solve_speedup=s, context=c)  # noqa: E731
    quiet_later = ScriptedTimer(profile, [_measurement(0.6, busy=0.5), _measurement(plan.predicted_speedup)])
    rounds = meet_target(solver, quiet_later, target, 0.0, 4, lambda _: None, plan)
    assert len(rounds) == 1 and rounds[0].measurement.busy == 0.0  # the busy measurement was not used
    always_busy = ScriptedTimer(profile, [_measurement(0.6, busy=0.5)] * 3)
    with pytest.raises(MachineTooBusy, match="machine too busy: other processes used 50% of the CPU"):
        meet_target(solver, always_busy, target, 0.0, 4, lambda _: None, plan)
    assert len(always_busy.measured) == 3


def test_generate_verify_under_a_cpu_hog_names_the_busy_machine(measured_cnn_profile, tmp_path, no_pause):
    """Every core kept busy by other processes while generate --verify measures: a clear 'machine too busy'
    error and nothing written (real engine, real load)."""
    profile, profile_path = measured_cnn_profile
    require_speedup(profile, 1.01)  # any feasible target will do: the point is the load
    out = tmp_path / "r.yaml"
    spin = "import time\nend = time.monotonic() + 300\nwhile time.monotonic() < end: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count() or 1)]
    try:
        code, _, stderr = run_cli(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", halfway(profile, 0.4),
                                   "--verify", "--rounds", 3, "-o", out])
    finally:
        for hog in hogs:
            hog.kill()
    assert code != 0 and not out.exists()
    assert "error: machine too busy: other processes used" in stderr, stderr
