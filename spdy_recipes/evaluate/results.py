"""Every method's allocation pruned one-shot the same way, optionally globally re-fitted, and scored on the
calibration and held-out data; the table of results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import SpdyError
from ..models import prunable_layers
from ..models.oneshot import magnitude_mask
from ..sensitivity.global_refit import dense_copy, global_refit
from ..sensitivity.hessians import collect_hessians, weight_matrix
from ..sensitivity.reconstruct import LayerReconstructor
from ..sensitivity.scoring import Evaluation
from ..sensitivity.setup import AccuracySetup
from ..verify.measure import SpeedupMeasurement
from .matching import Allocation


@dataclass(kw_only=True)
class MethodResult:
    """One allocation method at the common latency (``unreachable`` says why a baseline has no numbers)."""

    method: str
    sparsities: dict[str, float]
    predicted_speedup: float | None
    measurement: SpeedupMeasurement | None
    calibration: Evaluation | None
    heldout: Evaluation | None
    unreachable: str = ""


def _evaluate(setup: AccuracySetup, int8: bool = False) -> tuple[Evaluation, Evaluation | None]:
    """Calibration and held-out scores of the model's current weights; with ``int8``, of its fake-quantized copy
    (``models.quantize.quantized_module``, observers calibrated on the first calibration batch), against the
    same dense fp32 references: what the INT8 export computes."""
    model = None
    if int8:
        from ..models.quantize import quantized_module

        inputs, _ = next(setup.calibration.batches(setup.bundle.batch_size))
        model = quantized_module(setup.bundle.module, inputs)
    heldout = setup.heldout_scorer.evaluate(model) if setup.heldout_scorer else None
    return setup.scorer.evaluate(model), heldout


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
            keep = magnitude_mask(dense, sparsity, self.setup.database.mask_type)
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
                         oneshot: OneShot | None = None, int8: bool = False) -> list[MethodResult]:
    """Dense first, then SPDY's and each of ``methods``' allocation (in that order, as
    ``matched_allocations`` returns them) pruned one-shot (``OneShot``), then ``refit_steps`` Adam steps
    of global re-fit (0: none), evaluated on the calibration and held-out data. The model is left dense.
    Evaluating the same allocations with several ``refit_steps`` compares the regimes at one speed; pass
    one ``oneshot`` to all of them so that its Hessians are collected once. With ``int8``, every row (dense
    included) is scored in its fake-quantized INT8 form against the dense fp32 model (``_evaluate``)."""
    stitcher = setup.stitcher
    stitcher.restore()
    calibration, heldout = _evaluate(setup, int8)
    results = [MethodResult(method="dense", sparsities={}, predicted_speedup=1.0, measurement=None,
                            calibration=calibration, heldout=heldout)]
    oneshot = oneshot or OneShot(setup)
    dense_model = dense_copy(setup.bundle.module) if refit_steps else None
    try:
        for method, allocation in zip(("spdy", *methods), allocations, strict=True):
            if isinstance(allocation, SpdyError):
                results.append(MethodResult(method=method, sparsities={}, predicted_speedup=None, measurement=None,
                                            calibration=None, heldout=None, unreachable=str(allocation)))
                continue
            if allocation.levels is not None:
                stitcher.apply_levels({name: allocation.levels[name] for name in setup.selected})
            else:
                stitcher.load(oneshot.weights(allocation.sparsities))
            if dense_model is not None:
                global_refit(setup.bundle.module, dense_model, setup.selected, setup.calibration,
                             setup.bundle.batch_size, refit_steps)
                stitcher.weights_changed()
            calibration, heldout = _evaluate(setup, int8)
            stitcher.restore()
            log(f"[compare] {method}: calibration loss {calibration.loss:.5g}")
            results.append(MethodResult(method=method, sparsities=allocation.sparsities,
                                        predicted_speedup=allocation.predicted_speedup,
                                        measurement=allocation.measurement, calibration=calibration, heldout=heldout))
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
        assert r.calibration is not None  # every method that reaches the latency was evaluated
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
    timed = [(r.method, r.measurement.low, r.measurement.high) for r in results
             if r.measurement and r.measurement.low is not None and r.measurement.high is not None]
    if not timed:
        return ""
    if len(timed) == 1:
        return f"measured speeds: only {timed[0][0]} was measured; no other method reaches this speed here"
    apart = [f"{fast} > {slow}" for i, (fast, fast_low, _) in enumerate(timed)
             for j, (slow, _, slow_high) in enumerate(timed) if i != j and fast_low > slow_high]
    if not apart:
        return "measured speeds: every interval overlaps the others, so the methods run equally fast within the noise"
    return ("measured speeds differ beyond the noise (95% intervals apart): " + ", ".join(apart)
            + "; the other pairs are equal within the noise")
