"""SPDY against the baselines at equal predicted latency: speed measured in the engine, loss on data.

Every method's sparsities are applied one-shot the same way: magnitude masks, and with the ``obs``
database the kept weights re-fitted layer-wise on the calibration data (SPDY takes its levels from the
database, the baselines are re-fitted at their own sparsities). Losses are the search's calibration loss
and the same loss on the held-out split, which the search never sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .accuracy import AccuracySetup
from .errors import SpdyError
from .masks import magnitude_mask
from .models import prunable_layers
from .models.layers import parameters_by_name
from .profile import Profile
from .sensitivity.hessians import collect_hessians, weight_matrix
from .sensitivity.reconstruct import LayerReconstructor
from .sensitivity.scoring import Evaluation
from .solve import Plan
from .solve.baselines import BASELINES, BaselinePlan, tune_baseline
from .verify import PlanTimer


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


def baseline_plans(setup: AccuracySetup, profile: Profile, plan: Plan,
                   methods: tuple[str, ...] = BASELINES) -> list[BaselinePlan | SpdyError]:
    """Each baseline tuned to the SPDY plan's predicted latency (within 0.5%), or why it cannot be."""
    params = parameters_by_name(setup.bundle.module)
    weights = {name: params[name].detach() for name in setup.selected}
    plans: list[BaselinePlan | SpdyError] = []
    for method in methods:
        try:
            plans.append(tune_baseline(method, profile, setup.selected, weights, plan.predicted_ms))
        except SpdyError as exc:
            plans.append(exc)
    return plans


def _evaluate(setup: AccuracySetup) -> tuple[Evaluation, Evaluation | None]:
    heldout = setup.heldout_scorer.evaluate() if setup.heldout_scorer else None
    return setup.scorer.evaluate(), heldout


class OneShot:
    """Prunes the selected layers to any sparsities, re-fitting kept weights when the database does."""

    def __init__(self, setup: AccuracySetup) -> None:
        self.setup = setup
        self.params = parameters_by_name(setup.bundle.module)
        self.reconstructors: dict[str, LayerReconstructor] = {}
        if setup.database.method == "obs":
            layers = [layer for layer in prunable_layers(setup.bundle.module) if layer.name in set(setup.selected)]
            hessians = collect_hessians(setup.bundle.module, layers, setup.calibration, setup.bundle.batch_size)
            self.reconstructors = {name: LayerReconstructor(h) for name, h in hessians.items()}

    def weights(self, sparsities: dict[str, float]) -> dict[str, torch.Tensor]:
        pruned = {}
        for name in self.setup.selected:
            dense = self.setup.stitcher.dense[name]
            keep = magnitude_mask(dense, sparsities.get(name, 0.0))
            reconstructor = self.reconstructors.get(name)
            if reconstructor is None:
                pruned[name] = dense * keep
            else:
                fitted = reconstructor.reconstruct(weight_matrix(dense), weight_matrix(keep))
                pruned[name] = fitted.view(dense.shape)
        return pruned


def compare_methods(setup: AccuracySetup, profile: Profile, plan: Plan, timer: PlanTimer | None,
                    log: Callable[[str], None], methods: tuple[str, ...] = BASELINES) -> list[MethodResult]:
    """Dense, SPDY and each baseline: predicted and measured speedup, calibration and held-out evaluation."""
    stitcher = setup.stitcher
    stitcher.restore()
    calibration, heldout = _evaluate(setup)
    results = [MethodResult("dense", {}, 1.0, 1.0, calibration, heldout)]
    oneshot = OneShot(setup)
    allocations = [("spdy", plan.sparsities, plan.predicted_speedup)]
    for method, baseline in zip(methods, baseline_plans(setup, profile, plan, methods)):
        if isinstance(baseline, SpdyError):
            log(f"[compare] {baseline}")
            results.append(MethodResult(method, {}, None, None, None, None, str(baseline)))
        else:
            allocations.append((method, baseline.sparsities, baseline.predicted_speedup))
    try:
        for method, sparsities, predicted in allocations:
            if method == "spdy":
                stitcher.apply_levels({name: plan.levels[name] for name in setup.selected})
            else:
                stitcher.load(oneshot.weights(sparsities))
            calibration, heldout = _evaluate(setup)
            stitcher.restore()
            measured = timer.measure({n: s for n, s in sparsities.items() if s > 0}).speedup if timer else None
            log(f"[compare] {method}: predicted {predicted:.3f}x" + (f", measured {measured:.3f}x" if measured else "")
                + f", calibration loss {calibration.loss:.5g}")
            results.append(MethodResult(method, sparsities, predicted, measured, calibration, heldout))
    finally:
        stitcher.restore()
    order = ("dense", "spdy") + tuple(methods)
    return sorted(results, key=lambda r: order.index(r.method))


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
