"""The dynamic program against brute force, its budget guarantee and infeasible targets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spdy_recipes.errors import SpdyError
from spdy_recipes.profile.schema import LayerTimes, Profile
from spdy_recipes.sensitivity import prior_errors
from spdy_recipes.solve import plan_profile, solve_min_error


def brute_force(times, errors, budget):
    best = None
    for combo in itertools.product(range(times.shape[1]), repeat=times.shape[0]):
        total_time = sum(times[i, k] for i, k in enumerate(combo))
        if total_time <= budget + 1e-9:
            err = sum(errors[i, k] for i, k in enumerate(combo))
            if best is None or err < best - 1e-12:
                best = err
    return best


@pytest.mark.parametrize("seed", range(25))
def test_dp_matches_brute_force_on_integer_times(seed):
    rng = np.random.default_rng(seed)
    layers, options = rng.integers(2, 6), rng.integers(2, 5)
    times = rng.integers(0, 20, size=(layers, options)).astype(float)
    errors = rng.random((layers, options))
    budget = float(rng.integers(times.min(axis=1).sum(), times.max(axis=1).sum() + 1))
    picks = solve_min_error(times, errors, budget, buckets=int(budget) or 1)
    expected = brute_force(times, errors, budget)
    assert picks is not None and expected is not None
    assert sum(times[i, k] for i, k in enumerate(picks)) <= budget
    assert sum(errors[i, k] for i, k in enumerate(picks)) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(25))
def test_dp_never_exceeds_budget_with_real_valued_times(seed):
    rng = np.random.default_rng(100 + seed)
    times = rng.random((6, 5)) * 10
    errors = rng.random((6, 5))
    budget = times.min(axis=1).sum() + rng.random() * (times.max(axis=1).sum() - times.min(axis=1).sum())
    picks = solve_min_error(times, errors, budget, buckets=1000)
    assert picks is not None
    assert sum(times[i, k] for i, k in enumerate(picks)) <= budget
    # optimal up to rounding: no worse than the exact optimum under a budget shrunk by the rounding slack
    slack = times.shape[0] * budget / 1000
    assert sum(errors[i, k] for i, k in enumerate(picks)) <= brute_force(times, errors, budget - slack) + 1e-9


def test_dp_returns_none_when_nothing_fits():
    times = np.array([[5.0, 4.0], [5.0, 3.0]])
    assert solve_min_error(times, np.zeros_like(times), 6.0) is None


def _profile(times: list[list[float]], fixed: float, grid: list[float]) -> Profile:
    layers = [LayerTimes(name=f"l{i}.weight", module=f"l{i}", kind="conv", shape=[1], flops=1,
                         samples_ms=[[t] for t in row], kernels=[""] * len(grid))
              for i, row in enumerate(times)]
    totals = [[fixed + sum(row[k] for row in times)] for k in range(len(grid))]
    return Profile(model={"spec": "x", "graph_hash": "h", "batch_size": 1}, hardware={},
                   engine={"num_cores": 1, "name": "deepsparse", "version": "0"}, grid=grid, layers=layers,
                   other_samples_ms=[[fixed]] * len(grid), total_samples_ms=totals, flags={}, created="",
                   tool_version="0")


def test_sparse_slower_than_dense_keeps_layer_dense():
    grid = [0.0, 0.5, 0.9]
    # layer 0 is slower at 50% than dense; layer 1 gets much faster when sparse
    profile = _profile([[10.0, 14.0, 9.5], [10.0, 6.0, 2.0]], fixed=2.0, grid=grid)
    plan = plan_profile(profile, 1.5, ["l0.weight", "l1.weight"], prior_errors(2, 3))
    assert plan.sparsities["l0.weight"] == 0.0  # 50% would be slower and 90% costs more error than needed
    assert plan.predicted_ms <= profile.dense_ms / 1.5
    assert plan.predicted_speedup >= 1.5


def test_infeasible_target_names_best_reachable_speedup():
    profile = _profile([[10.0, 6.0, 4.0], [10.0, 8.0, 5.0]], fixed=2.0, grid=[0.0, 0.5, 0.9])
    best = profile.dense_ms / (2.0 + 4.0 + 5.0)
    with pytest.raises(SpdyError, match=rf"best reachable is {best:.3f}x"):
        plan_profile(profile, best * 1.01, ["l0.weight", "l1.weight"], prior_errors(2, 3))
    plan = plan_profile(profile, best * 0.999, ["l0.weight", "l1.weight"], prior_errors(2, 3))
    assert plan.predicted_speedup >= best * 0.999


def test_unselected_layers_are_charged_dense():
    profile = _profile([[10.0, 2.0], [10.0, 2.0]], fixed=0.0, grid=[0.0, 0.9])
    # only l1 may be pruned: the best reachable is 20 / (10 + 2)
    with pytest.raises(SpdyError, match=r"best reachable is 1\.667x"):
        plan_profile(profile, 1.8, ["l1.weight"], prior_errors(1, 2))
    plan = plan_profile(profile, 1.6, ["l1.weight"], prior_errors(1, 2))
    assert plan.sparsities == {"l0.weight": 0.0, "l1.weight": 0.9}


def test_errors_steer_the_choice():
    profile = _profile([[10.0, 5.0], [10.0, 5.0]], fixed=0.0, grid=[0.0, 0.9])
    errors = np.array([[0.0, 5.0], [0.0, 1.0]])  # pruning l1 is cheaper
    plan = plan_profile(profile, 1.3, ["l0.weight", "l1.weight"], errors)
    assert plan.sparsities == {"l0.weight": 0.0, "l1.weight": 0.9}
    plan = plan_profile(profile, 1.3, ["l0.weight", "l1.weight"], errors[::-1].copy())
    assert plan.sparsities == {"l0.weight": 0.9, "l1.weight": 0.0}


def _unit_brute_force(profile, names, errors, units, budget):
    """The least total error over plans that keep every unit at one level, by enumeration."""
    times = np.array([layer.times(0.9) for layer in profile.layers])
    best = None
    for combo in itertools.product(range(len(profile.grid)), repeat=len(units)):
        levels = {i: k for unit, k in zip(units, combo, strict=True) for i in unit}
        if sum(times[i, k] for i, k in levels.items()) <= budget + 1e-9:
            err = sum(errors[i, k] for i, k in levels.items())
            best = err if best is None or err < best else best
    return best


@pytest.mark.parametrize("seed", range(10))
def test_layers_one_engine_operation_fuses_share_a_level_and_the_plan_is_optimal_over_blocks(seed):
    """DeepSparse times a fused pyramid as one operation; its per-layer split says nothing about other level
    combinations, so the planner keeps a fusion block at one level (and stays optimal over such plans)."""
    rng = np.random.default_rng(seed)
    grid = [0.0, 0.5, 0.8, 0.95]
    times = [[10.0] + sorted(rng.random(3) * 9, reverse=True) for _ in range(4)]
    profile = _profile(times, fixed=1.0, grid=grid)
    # l1 and l2 were fused at level 1, l2 and l3 at level 3: one block of three, l0 alone
    profile.fused_groups = [[], [["l1.weight", "l2.weight"]], [], [["l2.weight", "l3.weight"]]]
    assert profile.blocks() == [["l0.weight"], ["l1.weight", "l2.weight", "l3.weight"]]
    names = profile.layer_names
    errors = rng.random((4, 4)) * np.array(grid)
    speedup = profile.dense_ms / (profile.dense_ms * 0.4 + 0.6 * (1.0 + sum(min(r) for r in times)))
    plan = plan_profile(profile, speedup, names, errors)
    assert len({plan.levels[n] for n in names[1:]}) == 1
    assert plan.bound_ms <= profile.dense_ms / speedup * (1 + 1e-12)
    budget = profile.dense_ms / speedup - 1.0
    slack = 2 * budget / 10_000  # optimal up to rounding: two units, each rounded up by at most one bucket
    assert plan.total_error <= _unit_brute_force(profile, names, errors, [[0], [1, 2, 3]], budget - slack) + 1e-9


def test_a_block_is_charged_its_own_fastest_level_not_each_layers():
    """The split of a fused time can make each layer look fastest at another level; the block is not."""
    profile = _profile([[10.0, 2.0, 8.0], [10.0, 8.0, 2.0]], fixed=0.0, grid=[0.0, 0.5, 0.9])
    names = profile.layer_names
    with_split = plan_profile(profile, 3.0, names, prior_errors(2, 3))  # 20 / (2 + 2): levels 1 and 2
    assert with_split.levels == {"l0.weight": 1, "l1.weight": 2}
    profile.fused_groups = [[["l0.weight", "l1.weight"]], [], []]
    with pytest.raises(SpdyError, match=r"best reachable is 2\.000x"):  # 20 / 10 at either shared level
        plan_profile(profile, 3.0, names, prior_errors(2, 3))


REAL_PROFILES = [  # recorded DeepSparse profiles: (path, layers x levels)
    "recipes/hardware/epyc-avx2-2core/torchvision-mobilenet_v2-bs16-c2.json",  # 36 x 42, AVX2
    "recipes/hardware/xeon-avx512-2core/torchvision-mobilenet_v2-bs16-c2.json",  # 36 x 42, AVX-512
    "tests/data/profiles/avx512/resnet50.json",  # 54 x 42
]


def _milp_least_error(times: np.ndarray, errors: np.ndarray, budget: float, buckets: int) -> float:
    """The least total error of the bucketed problem the DP solves (every time rounded up to budget/buckets),
    as a 0/1 integer program solved by HiGHS: an independent reference for the DP's optimality."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    steps = np.ceil(times / (budget / buckets) - 1e-9)
    rows, options = times.shape
    one_per_row = np.kron(np.eye(rows), np.ones(options))
    constraints = [LinearConstraint(one_per_row, 1, 1), LinearConstraint(steps.reshape(1, -1), 0, buckets)]
    result = milp(errors.ravel(), constraints=constraints, integrality=np.ones(rows * options),
                  bounds=Bounds(0, 1), options={"mip_rel_gap": 0})
    assert result.success, result.message
    return float(result.fun)


@pytest.mark.parametrize("path", REAL_PROFILES)
def test_dp_is_optimal_on_recorded_profiles_against_an_integer_program(path):
    """On real tables (fusion units of a recorded profile, seeded per-layer scaled SPDY priors) the DP's error
    equals the integer program's optimum, and its bucketed total stays within the budget."""
    from pathlib import Path

    from spdy_recipes.profile import load_profile
    from spdy_recipes.solve.planner import fusion_units
    from spdy_recipes.solve.settings import best_reachable

    profile = load_profile(Path(__file__).resolve().parents[1] / path)
    names, rng = profile.layer_names, np.random.default_rng(0)
    errors = prior_errors(len(names), len(profile.grid)) * rng.uniform(0.1, 10, (len(names), 1))
    units = fusion_units(profile, names)
    planning = np.array([layer.times(0.9) for layer in profile.layers])
    times = np.array([planning[unit].sum(axis=0) for unit in units])
    unit_errors = np.array([errors[unit].sum(axis=0) for unit in units])
    reach = best_reachable(profile)
    for fraction in (0.3, 0.7, 0.95):
        speedup = 1 + fraction * (reach - 1)
        budget = profile.dense_ms / speedup - (profile.fixed(0.9))
        picks = solve_min_error(times, unit_errors, budget, 2_000)
        steps = np.ceil(times / (budget / 2_000) - 1e-9)
        assert sum(steps[i, k] for i, k in enumerate(picks)) <= 2_000
        found = sum(unit_errors[i, k] for i, k in enumerate(picks))
        assert found == pytest.approx(_milp_least_error(times, unit_errors, budget, 2_000), rel=1e-9, abs=1e-12)
        plan = plan_profile(profile, speedup, names, errors)
        assert plan.bound_ms <= profile.dense_ms / speedup * (1 + 1e-12)
