"""The solver on real profiles of one model from both CPU kinds the project has met (AMD EPYC AVX2 and Intel
Xeon AVX-512 VNNI, stored under recipes/hardware/): the same guarantees hold whatever the ISA, and the
answers are the same on every machine that runs the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from spdy_recipes.profile import load_profile
from spdy_recipes.solve.settings import SolveSettings, best_reachable, solve

HARDWARE = Path(__file__).resolve().parent.parent / "recipes" / "hardware"
PROFILES = {isa: HARDWARE / folder / "torchvision-mobilenet_v2-bs16-c2.json"
            for isa, folder in (("avx2", "epyc-avx2-2core"), ("avx512", "xeon-avx512-2core"))}


@pytest.fixture(scope="module", params=sorted(PROFILES))
def profile(request):
    loaded = load_profile(PROFILES[request.param])
    assert loaded.hardware["isa"] == request.param
    return loaded


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9])
def test_every_plan_fits_its_budget_and_predicts_at_least_the_target(profile, fraction):
    target = 1 + fraction * (best_reachable(profile) - 1)
    plan = solve(profile, target)
    assert plan.bound_ms <= profile.dense_ms / target * (1 + 1e-9)
    assert plan.guaranteed_speedup >= target * (1 - 1e-9)
    assert plan.predicted_speedup >= plan.guaranteed_speedup - 1e-9
    assert solve(profile, target).sparsities == plan.sparsities  # deterministic


def test_a_faster_target_never_prunes_less_in_total(profile):
    """More speed costs error: with the prior's errors, the total error of the chosen plans grows with the
    target, and the fastest plan is the one the best reachable speedup describes."""
    best = best_reachable(profile)
    plans = [solve(profile, 1 + f * (best - 1)) for f in (0.1, 0.3, 0.5, 0.7, 0.9, 0.999)]
    errors = [plan.total_error for plan in plans]
    assert errors == sorted(errors) and errors[0] < errors[-1]
    assert plans[-1].guaranteed_speedup == pytest.approx(best, rel=0.01)


def test_excluding_layers_lowers_the_best_reachable_speedup(profile):
    every = best_reachable(profile)
    fewer = best_reachable(profile, SolveSettings(exclude=(r"^features\.1[0-8]\.",)))
    assert 1.0 < fewer < every
