"""Allocations of SPDY and the baselines at one speed: predicted (baselines tuned to SPDY's predicted
latency) or measured (every method re-aimed until the engine measures it at the target)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import SpdyError
from ..profile import Profile
from ..solve.baselines import BASELINES, fastest_baseline, tune_baseline
from ..solve.objective import SearchedSolver
from ..solve.settings import solve
from ..verify import PlanTimer
from ..verify.bracket import next_aim
from ..verify.measure import SpeedupMeasurement

MATCH_ROUNDS = 5
SEARCHED_ROUNDS = 2  # SPDY's first aims each get their own search; later (small) corrections reuse the last
MATCH_TOLERANCE = 0.01  # a method matches the target when measured within this fraction of it
MATCH_REACH = 1.0  # re-aiming extrapolates at most one gap beyond the measured points (nearly equal speeds)
SPEEDUP_FLOOR = 1e-6  # aims stay this far inside (1, the fastest predicted plan): the DP needs a budget it meets
SAME_AIM = 1e-9  # an aim this close to one tried already would measure the same plan again


@dataclass(kw_only=True)
class Allocation:
    """Per-layer sparsities of one method at one speed; SPDY's also name their database levels."""

    method: str
    sparsities: dict[str, float]
    predicted_speedup: float
    levels: dict[str, int] | None = None
    measurement: SpeedupMeasurement | None = None

    @property
    def measured_speedup(self) -> float | None:
        return self.measurement.speedup if self.measurement else None


def baseline_at(method: str, speedup: float, selected: list[str], dense: dict[str, torch.Tensor],
                profile: Profile) -> Allocation:
    """A baseline over the ``selected`` layers (``dense``: their weights) tuned to the predicted ``speedup``
    within 0.5%; SpdyError when out of its reach."""
    baseline = tune_baseline(method, profile, selected, dense, profile.dense_ms / speedup)
    return Allocation(method=method, sparsities=baseline.sparsities, predicted_speedup=baseline.predicted_speedup)


def at_predicted_speed(spdy: Allocation, aim: float, profile: Profile, selected: list[str],
                       dense: dict[str, torch.Tensor], timer: PlanTimer | None, log: Callable[[str], None],
                       methods: tuple[str, ...] = BASELINES) -> list[Allocation | SpdyError]:
    """``spdy`` (solved for the speedup ``aim``) and every baseline tuned to its predicted latency (or why it
    cannot reach it), each measured once when ``timer``."""
    _measure(spdy, timer, aim, log)
    results: list[Allocation | SpdyError] = [spdy]
    for method in methods:
        try:
            allocation = baseline_at(method, spdy.predicted_speedup, selected, dense, profile)
            results.append(allocation)
            _measure(allocation, timer, spdy.predicted_speedup, log)
        except SpdyError as exc:
            log(f"[compare] {exc}")
            results.append(exc)
    return results


def _measure(allocation: Allocation, timer: PlanTimer | None, aim: float, log: Callable[[str], None]) -> None:
    if timer:
        allocation.measurement = timer.measure(allocation.sparsities)
        log(f"[compare] {allocation.method}: aimed at {aim:.3f}x, predicted {allocation.predicted_speedup:.3f}x, "
            f"measured {allocation.measurement.describe()}")


def _spdy_at(solver: SearchedSolver, speedup: float, search: bool) -> Allocation:
    """SPDY's plan for a predicted ``speedup``: searched for it, or solved with the last search's coefficients."""
    if search or solver.last is None:
        plan = solver(solver.profile, speedup)
    else:
        plan = solve(solver.profile, speedup, solver.settings_of(solver.last))
    return Allocation(method="spdy", sparsities=plan.sparsities, predicted_speedup=plan.predicted_speedup,
                      levels=plan.levels)


def match_aim(tried: list[tuple[float, float]], target: float, top: float) -> float:
    """The next predicted speedup to aim at, from the (aim, measured speedup) pairs tried so far: the shared
    bracketing routine (``verify.bracket.next_aim``, extrapolating at most ``MATCH_REACH`` gaps so that two
    nearly equal measurements cannot throw the aim far away), kept within (1, ``top``]."""
    points = [(aim, measured, measured >= target) for aim, measured in tried]
    return min(max(next_aim(points, target, reach=MATCH_REACH), 1.0 + SPEEDUP_FLOOR), top)


def _measured_speedup(allocation: Allocation) -> float:
    """The speedup ``_measure`` measured for ``allocation`` (with a timer)."""
    if allocation.measurement is None:
        raise ValueError(f"{allocation.method}'s allocation was not measured")
    return allocation.measurement.speedup


def _baseline_allocator(method: str, selected: list[str], dense: dict[str, torch.Tensor],
                        profile: Profile) -> Callable[[float, int], Allocation]:
    """``allocate(predicted speedup, round)`` for ``_at_measured``: ``method``'s baseline at that speedup."""
    return lambda aim, _: baseline_at(method, aim, selected, dense, profile)


def _at_measured(allocate: Callable[[float, int], Allocation], top: float, target: float, timer: PlanTimer,
                 log: Callable[[str], None]) -> Allocation:
    """Re-aim ``allocate(predicted speedup, round)`` (``verify.bracket.next_aim``, never beyond ``top``, the fastest it
    predicts) until it measures within 1% of ``target``; of at most ``MATCH_ROUNDS`` measurements, the
    slowest at 99% of the target or more. SpdyError when none is that fast."""
    aim = min(target, top)
    tries: list[tuple[float, Allocation]] = []
    for round_index in range(MATCH_ROUNDS):
        allocation = allocate(aim, round_index)
        _measure(allocation, timer, aim, log)
        tries.append((aim, allocation))
        measured = _measured_speedup(allocation)
        if abs(measured / target - 1) <= MATCH_TOLERANCE or (aim == top and measured < target):
            break
        aim = match_aim([(a, _measured_speedup(t)) for a, t in tries], target, top)
        # e.g. its least sparse plan is too fast
        if any(math.isclose(aim, tried, rel_tol=0, abs_tol=SAME_AIM) for tried, _ in tries):
            break
    fast_enough = [t for _, t in tries if _measured_speedup(t) >= target * (1 - MATCH_TOLERANCE)]
    if not fast_enough:
        raise SpdyError(f"{tries[0][1].method} measures at most {max(_measured_speedup(t) for _, t in tries):.3f}x "
                        f"here (its fastest predicted plan is {top:.3f}x)")
    return min(fast_enough, key=_measured_speedup)


def matched_allocations(solver: SearchedSolver, timer: PlanTimer | None, match: str, log: Callable[[str], None],
                        methods: tuple[str, ...] = BASELINES) -> list[Allocation | SpdyError]:
    """SPDY's allocation for the solver's target and every baseline's at the same speed, or why not.

    ``match="predicted"``: SPDY as searched; baselines tuned to its predicted latency; each measured once
    (if ``timer``). ``match="measured"``: every method re-aimed until it measures within 1% of the target
    (``_at_measured``); SPDY is searched again for its second aim (``SEARCHED_ROUNDS``), later aims reuse
    those coefficients."""
    setup, profile, target = solver.setup, solver.profile, solver.target
    selected, dense = setup.selected, setup.stitcher.dense
    if match != "measured":
        plan = solver(solver.profile)
        spdy = Allocation(method="spdy", sparsities=plan.sparsities, predicted_speedup=plan.predicted_speedup,
                          levels=plan.levels)
        return at_predicted_speed(spdy, target, profile, selected, dense, timer, log, methods)
    if timer is None:  # CompareRequest.check refuses match="measured" without rounds
        raise SpdyError("matching the methods at measured speed needs a timer (rounds > 0)")
    top = solve(profile, 1.0 + SPEEDUP_FLOOR, solver.settings).max_speedup * (1 - SPEEDUP_FLOOR)
    spdy = _at_measured(lambda aim, r: _spdy_at(solver, aim, r < SEARCHED_ROUNDS), top, target, timer, log)
    results: list[Allocation | SpdyError] = [spdy]
    for method in methods:
        try:
            fastest = fastest_baseline(method, profile, selected, dense)
            top = fastest.predicted_speedup * (1 - SPEEDUP_FLOOR)
            results.append(_at_measured(_baseline_allocator(method, selected, dense, profile), top, target, timer, log))
        except SpdyError as exc:
            log(f"[compare] {exc}")
            results.append(exc)
    return results
