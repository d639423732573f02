"""SPDY against the baselines at equal speed (predicted, or measured in the engine), loss on data.

Every method's sparsities are applied one-shot the same way: magnitude masks, and with the ``obs``
database the kept weights re-fitted layer-wise on the calibration data (SPDY takes its levels from the
database, the baselines are re-fitted at their own sparsities), then optionally a global re-fit of all
kept weights against the dense model. Losses are the search's calibration loss and the same loss on
the held-out split, which the search never sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .accuracy import AccuracySetup, SearchedSolver
from .errors import SpdyError
from .masks import magnitude_mask
from .models import prunable_layers
from .pipeline import solve
from .profile import Profile
from .sensitivity.global_refit import dense_copy, global_refit
from .sensitivity.hessians import collect_hessians, weight_matrix
from .sensitivity.reconstruct import LayerReconstructor
from .sensitivity.scoring import Evaluation
from .solve.baselines import BASELINES, fastest_baseline, tune_baseline
from .verify import PlanTimer

MATCH_ROUNDS = 4
SEARCHED_ROUNDS = 2  # SPDY's first aims each get their own search; later (small) corrections reuse the last


@dataclass
class MethodResult:
    """One allocation method at the common latency (``unreachable`` says why a baseline has no numbers)."""

    method: str
    sparsities: dict[str, float]
    predicted_speedup: float | None
    measured_speedup: float | None
    calibration: Evaluation | None
    heldout: Evaluation | None
    unreachable: str = ""


@dataclass
class Allocation:
    """Per-layer sparsities of one method at one speed; SPDY's also name their database levels."""

    method: str
    sparsities: dict[str, float]
    predicted_speedup: float
    levels: dict[str, int] | None = None
    measured_speedup: float | None = None


def baseline_at(method: str, speedup: float, setup: AccuracySetup, profile: Profile) -> Allocation:
    """A baseline tuned to the predicted ``speedup`` within 0.5%; SpdyError when out of its reach."""
    baseline = tune_baseline(method, profile, setup.selected, setup.stitcher.dense, profile.dense_ms / speedup)
    return Allocation(method, baseline.sparsities, baseline.predicted_speedup)


def _measure(allocation: Allocation, timer: PlanTimer | None, aim: float, log: Callable[[str], None]) -> None:
    if timer:
        allocation.measured_speedup = timer.measure(allocation.sparsities).speedup
        log(f"[compare] {allocation.method}: aimed at {aim:.3f}x, predicted {allocation.predicted_speedup:.3f}x, "
            f"measured {allocation.measured_speedup:.3f}x")


def _spdy_at(solver: SearchedSolver, speedup: float, search: bool) -> Allocation:
    """SPDY's plan for a predicted ``speedup``: searched for it, or solved with the last search's coefficients."""
    if search or solver.last is None:
        plan = solver(speedup)
    else:
        plan = solve(solver.profile, speedup, solver.settings_of(solver.last))
    return Allocation("spdy", plan.sparsities, plan.predicted_speedup, plan.levels)


def _at_measured(allocate: Callable[[float, int], Allocation], top: float, target: float, timer: PlanTimer,
                 log: Callable[[str], None]) -> Allocation:
    """Re-aim ``allocate(predicted speedup, round)`` until it measures within 1% of ``target``: first by
    target/measured, then by the secant through the last two measurements (never beyond ``top``, the
    fastest it predicts); of at most ``MATCH_ROUNDS`` measurements, the slowest at 99% of the target or
    more. SpdyError when none is that fast."""
    aims, tries = [min(target, top)], []
    for round_index in range(MATCH_ROUNDS):
        allocation = allocate(aims[-1], round_index)
        _measure(allocation, timer, aims[-1], log)
        tries.append(allocation)
        measured = allocation.measured_speedup
        if abs(measured / target - 1) <= 0.01 or (aims[-1] == top and measured < target):
            break
        aim = aims[-1] * target / measured
        if len(tries) > 1 and measured != tries[-2].measured_speedup:
            slope = (aims[-1] - aims[-2]) / (measured - tries[-2].measured_speedup)
            aim = aims[-1] + slope * (target - measured) if slope > 0 else aim
        aims.append(min(max(aim, 1.0 + 1e-6), top))
    fast_enough = [a for a in tries if a.measured_speedup >= target * 0.99]
    if not fast_enough:
        raise SpdyError(f"{tries[0].method} measures at most {max(a.measured_speedup for a in tries):.3f}x here "
                        f"(its fastest predicted plan is {top:.3f}x)")
    return min(fast_enough, key=lambda a: a.measured_speedup)


def matched_allocations(solver: SearchedSolver, timer: PlanTimer | None, match: str, log: Callable[[str], None],
                        methods: tuple[str, ...] = BASELINES) -> list[Allocation | SpdyError]:
    """SPDY's allocation for the solver's target and every baseline's at the same speed, or why not.

    ``match="predicted"``: SPDY as searched; baselines tuned to its predicted latency; each measured once
    (if ``timer``). ``match="measured"``: every method re-aimed until it measures within 1% of the target
    (``_at_measured``); SPDY is searched again for its second aim (``SEARCHED_ROUNDS``), later aims reuse
    those coefficients."""
    setup, profile, target = solver.setup, solver.profile, solver.target
    if match == "measured":
        top = solve(profile, 1.0 + 1e-6, solver.settings).max_speedup * (1 - 1e-6)
        spdy = _at_measured(lambda aim, r: _spdy_at(solver, aim, r < SEARCHED_ROUNDS), top, target, timer, log)
    else:
        plan = solver()
        spdy = Allocation("spdy", plan.sparsities, plan.predicted_speedup, plan.levels)
        _measure(spdy, timer, target, log)
    results: list[Allocation | SpdyError] = [spdy]
    for method in methods:
        try:
            if match == "measured":
                fastest = fastest_baseline(method, profile, setup.selected, setup.stitcher.dense)
                top = fastest.predicted_speedup * (1 - 1e-6)
                results.append(_at_measured(lambda aim, _: baseline_at(method, aim, setup, profile), top, target,
                                            timer, log))
            else:
                results.append(baseline_at(method, spdy.predicted_speedup, setup, profile))
                _measure(results[-1], timer, spdy.predicted_speedup, log)
        except SpdyError as exc:
            log(f"[compare] {exc}")
            results.append(exc)
    return results


def _evaluate(setup: AccuracySetup) -> tuple[Evaluation, Evaluation | None]:
    heldout = setup.heldout_scorer.evaluate() if setup.heldout_scorer else None
    return setup.scorer.evaluate(), heldout


class OneShot:
    """Prunes the selected layers to any sparsities, re-fitting kept weights when the database does."""

    def __init__(self, setup: AccuracySetup) -> None:
        self.setup = setup
        self.reconstructors: dict[str, LayerReconstructor] = {}
        if setup.database.method == "obs":
            layers = [layer for layer in prunable_layers(setup.bundle.module) if layer.name in set(setup.selected)]
            hessians = collect_hessians(setup.bundle.module, layers, setup.calibration, setup.bundle.batch_size)
            self.reconstructors = {name: LayerReconstructor(h) for name, h in hessians.items()}

    def weights(self, sparsities: dict[str, float]) -> dict[str, torch.Tensor]:
        pruned = {}
        for name in self.setup.selected:
            dense = self.setup.stitcher.dense[name]
            sparsity = sparsities.get(name, 0.0)
            keep = magnitude_mask(dense, sparsity)
            reconstructor = self.reconstructors.get(name)
            if sparsity == 0.0:
                pruned[name] = dense
            elif reconstructor is None:
                pruned[name] = dense * keep
            else:
                fitted = reconstructor.reconstruct(weight_matrix(dense), weight_matrix(keep))
                pruned[name] = fitted.view(dense.shape)
        return pruned


def compare_methods(solver: SearchedSolver, timer: PlanTimer | None, log: Callable[[str], None],
                    match: str = "predicted", methods: tuple[str, ...] = BASELINES,
                    refit_steps: int = 0) -> list[MethodResult]:
    """Dense, SPDY and each baseline at the same speed (see ``matched_allocations``): predicted and
    measured speedup, calibration and held-out evaluation after one-shot pruning (and ``refit_steps``
    of global re-fitting, the same for every method)."""
    setup = solver.setup
    stitcher = setup.stitcher
    stitcher.restore()
    calibration, heldout = _evaluate(setup)
    results = [MethodResult("dense", {}, 1.0, 1.0, calibration, heldout)]
    allocations = matched_allocations(solver, timer, match, log, methods)
    oneshot = OneShot(setup)
    dense_model = dense_copy(setup.bundle.module) if refit_steps else None
    try:
        for method, allocation in zip(("spdy", *methods), allocations):
            if isinstance(allocation, SpdyError):
                results.append(MethodResult(method, {}, None, None, None, None, str(allocation)))
                continue
            if allocation.levels is not None:
                stitcher.apply_levels({name: allocation.levels[name] for name in setup.selected})
            else:
                stitcher.load(oneshot.weights(allocation.sparsities))
            if dense_model is not None:
                global_refit(setup.bundle.module, dense_model, setup.selected, setup.calibration,
                             setup.bundle.batch_size, refit_steps)
                stitcher.weights_changed()
            calibration, heldout = _evaluate(setup)
            stitcher.restore()
            log(f"[compare] {method}: calibration loss {calibration.loss:.5g}")
            results.append(MethodResult(method, allocation.sparsities, allocation.predicted_speedup,
                                        allocation.measured_speedup, calibration, heldout))
    finally:
        stitcher.restore()
    return results


def format_results(results: list[MethodResult], loss_kind: str) -> str:
    """A fixed-width table, one row per method."""
    lines = [f"loss: {loss_kind}; held-out accuracy: " + ("top-1" if loss_kind == "cross-entropy"
                                                           else "top-1 agreement with dense"),
             f"{'method':<17}{'predicted':>10}{'measured':>10}{'calib loss':>13}{'held-out loss':>15}"
             f"{'held-out acc':>14}"]
    for r in results:
        if r.unreachable:
            lines.append(f"{r.method:<17}cannot reach this latency: {r.unreachable.split(': ', 1)[-1]}")
            continue
        measured = f"{r.measured_speedup:.3f}x" if r.measured_speedup else "-"
        held_loss = f"{r.heldout.loss:.5g}" if r.heldout else "-"
        held_acc = f"{r.heldout.accuracy:.4f}" if r.heldout and r.heldout.accuracy is not None else "-"
        lines.append(f"{r.method:<17}{r.predicted_speedup:>9.3f}x{measured:>10}{r.calibration.loss:>13.5g}"
                     f"{held_loss:>15}{held_acc:>14}")
    return "\n".join(lines)
