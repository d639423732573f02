"""SPDY against the baselines at equal speed (predicted, or measured in the engine), loss on data.

Every method's sparsities are applied one-shot the same way: magnitude masks, and with the ``obs``
database the kept weights re-fitted layer-wise on the calibration data (SPDY takes its levels from the
database, the baselines are re-fitted at their own sparsities), then optionally a global re-fit of all
kept weights against the dense model. Losses are the search's calibration loss and distillation to
dense on the held-out data, which the search never sees (with its top-1 against the labels where it
has labels). Measured speedups carry their 95% interval; ``speed_note`` says which methods' speeds
differ by more than that noise.
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
from .verify.measure import SpeedupMeasurement

MATCH_ROUNDS = 5
SEARCHED_ROUNDS = 2  # SPDY's first aims each get their own search; later (small) corrections reuse the last


@dataclass
class MethodResult:
    """One allocation method at the common latency (``unreachable`` says why a baseline has no numbers)."""

    method: str
    sparsities: dict[str, float]
    predicted_speedup: float | None
    measurement: SpeedupMeasurement | None
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
    measurement: SpeedupMeasurement | None = None

    @property
    def measured_speedup(self) -> float | None:
        return self.measurement.speedup if self.measurement else None


def baseline_at(method: str, speedup: float, selected: list[str], dense: dict[str, torch.Tensor],
                profile: Profile) -> Allocation:
    """A baseline over the ``selected`` layers (``dense``: their weights) tuned to the predicted ``speedup``
    within 0.5%; SpdyError when out of its reach."""
    baseline = tune_baseline(method, profile, selected, dense, profile.dense_ms / speedup)
    return Allocation(method, baseline.sparsities, baseline.predicted_speedup)


def at_predicted_speed(spdy: Allocation, aim: float, profile: Profile, selected: list[str],
                       dense: dict[str, torch.Tensor], timer: PlanTimer | None, log: Callable[[str], None],
                       methods: tuple[str, ...] = BASELINES) -> list[Allocation | SpdyError]:
    """``spdy`` (solved for the speedup ``aim``) and every baseline tuned to its predicted latency (or why it
    cannot reach it), each measured once when ``timer``."""
    _measure(spdy, timer, aim, log)
    results: list[Allocation | SpdyError] = [spdy]
    for method in methods:
        try:
            results.append(baseline_at(method, spdy.predicted_speedup, selected, dense, profile))
            _measure(results[-1], timer, spdy.predicted_speedup, log)
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
    return Allocation("spdy", plan.sparsities, plan.predicted_speedup, plan.levels)


def next_aim(tried: list[tuple[float, float]], target: float, top: float) -> float:
    """The next predicted speedup to aim at, from the (aim, measured speedup) pairs tried so far.

    Until the target is bracketed (an aim measured below it, and a higher aim measured at or above it):
    the ratio step ``aim * target / measured`` from the last try. Once bracketed: the secant between the
    bracket's ends, kept inside the bracket's middle 80% (regula falsi with a bisection guard), so that two
    nearly equal measurements cannot throw the aim far away. Always within [1, ``top``]."""
    above = [t for t in tried if t[1] >= target]
    high = min(above, default=None)  # the lowest aim measured fast enough
    below = [t for t in tried if t[1] < target and (high is None or t[0] < high[0])]
    low = max(below, default=None)  # the highest aim below it measured too slow (noise can invert pairs)
    if low is not None and high is not None and low[0] < high[0]:
        width = high[0] - low[0]
        secant = low[0] + (target - low[1]) * width / (high[1] - low[1])
        aim = min(max(secant, low[0] + 0.1 * width), high[0] - 0.1 * width)
    else:
        aim = tried[-1][0] * target / tried[-1][1]
    return min(max(aim, 1.0 + 1e-6), top)


def _at_measured(allocate: Callable[[float, int], Allocation], top: float, target: float, timer: PlanTimer,
                 log: Callable[[str], None]) -> Allocation:
    """Re-aim ``allocate(predicted speedup, round)`` (``next_aim``, never beyond ``top``, the fastest it
    predicts) until it measures within 1% of ``target``; of at most ``MATCH_ROUNDS`` measurements, the
    slowest at 99% of the target or more. SpdyError when none is that fast."""
    aim, tries = min(target, top), []
    for round_index in range(MATCH_ROUNDS):
        allocation = allocate(aim, round_index)
        _measure(allocation, timer, aim, log)
        tries.append((aim, allocation))
        measured = allocation.measured_speedup
        if abs(measured / target - 1) <= 0.01 or (aim == top and measured < target):
            break
        aim = next_aim([(a, t.measured_speedup) for a, t in tries], target, top)
        if any(abs(aim - tried) <= 1e-9 for tried, _ in tries):  # e.g. its least sparse plan is too fast
            break
    fast_enough = [t for _, t in tries if t.measured_speedup >= target * 0.99]
    if not fast_enough:
        raise SpdyError(f"{tries[0][1].method} measures at most {max(t.measured_speedup for _, t in tries):.3f}x "
                        f"here (its fastest predicted plan is {top:.3f}x)")
    return min(fast_enough, key=lambda a: a.measured_speedup)


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
        spdy = Allocation("spdy", plan.sparsities, plan.predicted_speedup, plan.levels)
        return at_predicted_speed(spdy, target, profile, selected, dense, timer, log, methods)
    top = solve(profile, 1.0 + 1e-6, solver.settings).max_speedup * (1 - 1e-6)
    spdy = _at_measured(lambda aim, r: _spdy_at(solver, aim, r < SEARCHED_ROUNDS), top, target, timer, log)
    results: list[Allocation | SpdyError] = [spdy]
    for method in methods:
        try:
            fastest = fastest_baseline(method, profile, selected, dense)
            top = fastest.predicted_speedup * (1 - 1e-6)
            results.append(_at_measured(lambda aim, _: baseline_at(method, aim, selected, dense, profile), top,
                                        target, timer, log))
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


def evaluate_allocations(setup: AccuracySetup, allocations: list[Allocation | SpdyError], methods: tuple[str, ...],
                         refit_steps: int = 0, log: Callable[[str], None] = lambda _: None,
                         oneshot: OneShot | None = None) -> list[MethodResult]:
    """Dense first, then SPDY's and each of ``methods``' allocation (in that order, as
    ``matched_allocations`` returns them) pruned one-shot (``OneShot``), then ``refit_steps`` Adam steps
    of global re-fit (0: none), evaluated on the calibration and held-out data. The model is left dense.
    Evaluating the same allocations with several ``refit_steps`` compares the regimes at one speed; pass
    one ``oneshot`` to all of them so that its Hessians are collected once."""
    stitcher = setup.stitcher
    stitcher.restore()
    calibration, heldout = _evaluate(setup)
    results = [MethodResult("dense", {}, 1.0, None, calibration, heldout)]
    oneshot = oneshot or OneShot(setup)
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
                                        allocation.measurement, calibration, heldout))
    finally:
        stitcher.restore()
    return results


def format_results(results: list[MethodResult], setup: AccuracySetup) -> str:
    """A fixed-width table, one row per method: predicted and measured speedup (with its 95% interval),
    calibration loss, held-out loss and accuracy; then ``speed_note``."""
    held_kind = setup.heldout_scorer.kind if setup.heldout_scorer else "-"
    accuracy = setup.heldout_scorer.accuracy_kind if setup.heldout_scorer else None
    lines = [f"calibration loss: {setup.scorer.kind}; held-out loss: {held_kind}; held-out accuracy: "
             f"{accuracy or '-'}",
             f"{'method':<17}{'predicted':>10} {'measured (95% interval)':<24}{'calib loss':>11}"
             f"{'held-out loss':>15}{'held-out acc':>14}"]
    for r in results:
        if r.unreachable:
            lines.append(f"{r.method:<17}cannot reach this latency: {r.unreachable.split(': ', 1)[-1]}")
            continue
        measured = r.measurement.describe() if r.measurement else "-"
        held_loss = f"{r.heldout.loss:.5g}" if r.heldout else "-"
        held_acc = f"{r.heldout.accuracy:.4f}" if r.heldout and r.heldout.accuracy is not None else "-"
        lines.append(f"{r.method:<17}{r.predicted_speedup:>9.3f}x {measured:<24}{r.calibration.loss:>11.5g}"
                     f"{held_loss:>15}{held_acc:>14}")
    note = speed_note(results)
    return "\n".join(lines + ([note] if note else []))


def speed_note(results: list[MethodResult]) -> str:
    """Which measured methods' speeds differ by more than the noise: their 95% intervals do not overlap.
    Empty when no method carries an interval."""
    timed = [r for r in results if r.measurement and r.measurement.low is not None and r.measurement.high is not None]
    if not timed:
        return ""
    if len(timed) == 1:
        return f"measured speeds: only {timed[0].method} was measured; no other method reaches this speed here"
    apart = [f"{fast.method} > {slow.method}" for fast in timed for slow in timed
             if fast is not slow and fast.measurement.low > slow.measurement.high]
    if not apart:
        return "measured speeds: every interval overlaps the others, so the methods run equally fast within the noise"
    return ("measured speeds differ beyond the noise (95% intervals apart): " + ", ".join(apart)
            + "; the other pairs are equal within the noise")
