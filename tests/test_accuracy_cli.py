"""generate --calib (SPDY's search) and compare, through the command line."""

from __future__ import annotations

import re

import pytest

from spdy_recipes.emit import read_recipe
from spdy_recipes.solve.settings import SolveSettings, solve

from .cli_helpers import CNN_ARGS, assert_clean_failure, run_cli
from .conftest import halfway as _speedup
from .conftest import require_speedup

CALIB = ["--calib", "builtin:images", "--calib-samples", "16"]


def test_generate_with_calibration_searches_and_records_it(tmp_path, cnn_profile, monkeypatch):
    monkeypatch.setenv("SPDY_RECIPES_CACHE", str(tmp_path / "cache"))  # an empty cache, whatever ran before
    profile, profile_path = cnn_profile
    out = tmp_path / "r.yaml"
    args = ["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", _speedup(profile), *CALIB,
            "--search-budget", "12", "-o", out]
    code, stdout, stderr = run_cli(args)
    assert code == 0, stderr
    assert "[database] built" in stderr and "[search] 12 candidates" in stderr
    recipe = read_recipe(out)
    metadata = recipe.metadata
    search = metadata["search"]
    assert metadata["errors"] == "SPDY prior x searched coefficients"
    assert len(metadata["coefficients"]) == len(profile.layers) and search["candidates"] == 12
    assert search["calibration_loss"] <= search["prior_loss"] and search["database"] == "obs"
    assert search["curve"][0][0] == 1 and search["loss"] == "KL to dense"
    plan = solve(profile, metadata["target_speedup"], SolveSettings(coefficients=tuple(metadata["coefficients"])))
    assert recipe.targets == {name: s for name, s in plan.pruned.items()}
    # a second run reuses the database and the finished search, and writes the same recipe
    code, _, stderr = run_cli([*args, "--force"])
    assert code == 0 and "[database] reused" in stderr and "continuing from checkpoint" in stderr
    first = read_recipe(out)
    assert first.targets == recipe.targets and first.metadata["coefficients"] == metadata["coefficients"]


def test_generate_verify_searches_once_and_keeps_the_coefficients_over_its_rounds(tmp_path, measured_cnn_profile):
    """Verification re-solves on the refitted table with the search's coefficients instead of searching again;
    the recipe's coefficients, solve speedup and verify_points reproduce its plan."""
    profile, profile_path = measured_cnn_profile
    require_speedup(profile)
    out = tmp_path / "v.yaml"
    code, stdout, stderr = run_cli(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", _speedup(profile),
                                    *CALIB, "--search-budget", "6", "--verify", "--rounds", "3", "--max-rounds", "3",
                                    "--tolerance", "0.1", "-o", out])
    if code != 0:  # the toy model on a shared machine may not measure up; then nothing is written
        assert "error:" in stderr and not out.exists()
        return
    recipe = read_recipe(out)
    metadata = recipe.metadata
    rounds = stderr.count("[verify] round")
    assert rounds >= 1 and "measured_speedup" in metadata
    assert len(re.findall(r"\[search\] \d+ candidates", stderr)) == 1, stderr  # one search, whatever the rounds
    if "a uniform plan met the target" in stderr:  # every layer at one level, and no search recorded for it
        assert len(set(recipe.targets.values())) == 1 and "coefficients" not in metadata
        return
    assert len(metadata.get("verify_points", [])) < rounds  # the rounds measured before the final plan was solved
    # the recorded coefficients, solve speedup and points reproduce the recipe, whichever round it came from
    solved_on = profile.refitted(profile.recorded_points(metadata.get("verify_points")))
    plan = solve(solved_on, metadata["target_speedup"], SolveSettings(coefficients=tuple(metadata["coefficients"])),
                 metadata["solve_speedup"])
    assert recipe.targets == plan.pruned
    assert plan.predicted_speedup == pytest.approx(metadata["predicted_speedup"], abs=1e-4)


def test_compare_prints_every_method_at_the_same_latency(cnn_profile):
    profile, profile_path = cnn_profile
    code, stdout, stderr = run_cli(["compare", *CNN_ARGS, "--hw", profile_path, "--speedup", _speedup(profile),
                                    *CALIB, "--holdout", "8", "--search-budget", "6", "--rounds", "2"])
    assert code == 0, stderr
    rows = _rows(stdout)
    assert list(rows) == ["dense", "spdy", "uniform", "global_magnitude", "lamp", "erk"]
    spdy = rows["spdy"].split()
    assert spdy[1].endswith("x") and spdy[2].endswith("x") and float(spdy[2][:-1]) > 0
    for method in ("uniform", "global_magnitude", "lamp", "erk"):  # at SPDY's latency, or says why not
        fields = rows[method].split()
        if "cannot" in rows[method]:
            assert "best reachable" in rows[method]
        else:  # (a weight of this toy model can move its latency by steps of a few %: precision is tested
            # on the profile in test_baselines)
            assert abs(float(fields[1][:-1]) / float(spdy[1][:-1]) - 1) <= 0.05


def test_bad_calibration_input_fails_cleanly(tmp_path, cnn_profile):
    profile, profile_path = cnn_profile
    base = ["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", _speedup(profile), "-o", tmp_path / "r.yaml"]
    assert_clean_failure([*base, "--calib", tmp_path / "nope"], "nope", tmp_path / "r.yaml")
    assert_clean_failure([*base, *CALIB, "--search-budget", "soon"], "--search-budget", tmp_path / "r.yaml")
    assert_clean_failure([*base, *CALIB, "--sensitivity", tmp_path / "s.json"], "exclude each other")
    assert_clean_failure(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", "50", *CALIB, "-o",
                          tmp_path / "r.yaml"], "best reachable", tmp_path / "r.yaml")
    assert_clean_failure(["compare", *CNN_ARGS, "--hw", profile_path, "--speedup", "1.1"], "needs --calib")


def test_compare_at_equal_measured_speed_measures_every_method(measured_cnn_profile):
    profile, profile_path = measured_cnn_profile
    require_speedup(profile)
    code, stdout, stderr = run_cli(["compare", *CNN_ARGS, "--hw", profile_path, "--speedup", _speedup(profile),
                                    *CALIB, "--holdout", "8", "--search-budget", "6", "--rounds", "2",
                                    "--match", "measured", "--global-refit", "0,2"])
    assert "[compare] spdy: aimed at" in stderr
    if code != 0:  # this (possibly busy) machine never measured SPDY's plans at the target: says so, cleanly
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "spdy measures at most" in errors[0], stderr
        return
    assert stdout.count("[one-shot, layer-wise re-fit]") == 1 and "global re-fit (2 steps)]" in stdout
    for line in list(_rows(stdout).values())[1:]:  # every reachable method was measured, with its interval
        assert "cannot" in line or re.search(r"\d\.\d{3}x \(\d\.\d\d-\d\.\d\d\)", line), line
    assert "measured speeds" in stdout  # and whether their speeds differ beyond the noise


def _rows(stdout: str) -> dict[str, str]:
    """The first regime's table rows by method."""
    methods = ("dense", "spdy", "uniform", "global_magnitude", "lamp", "erk")
    rows = {}
    for line in stdout.split("\n\n")[0].splitlines():
        if line.split() and line.split()[0] in methods:
            rows[line.split()[0]] = line
    return rows
