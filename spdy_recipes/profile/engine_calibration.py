"""Calibrate a profile on real engine calls: plans of the profile's own layers (uniform levels and random
per-fusion-block mixes) pruned by magnitude to real zeros, exported in the profile's deployment, and timed
against dense with real ``Engine`` calls in one interleaved run; the correction (``profile.correction``) is
fitted to them. An INT8 profile's run also times the dense fp32 model: what INT8 itself gains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..deployment import FP32
from ..models import ModelBundle
from ..models.export import export_onnx, export_pruned
from .correction import EnginePoint
from .engine import TimingBackend, TimingRule
from .noise import paired_speedup
from .schema import Profile

CALIBRATION_SEED = 1
UNIFORM_SPARSITIES = (0.6, 0.8, 0.9, 0.95)  # the uniform plans: the grid levels nearest these
DENSE_SHARES = (0.25, 0.5, 0.75)  # random plans leave about this share of fusion blocks dense, in turn
HOLDOUT_EVERY = 3  # every third random plan is held out of the fit and only scored
# the fit averages many plans: each needs less precision than a verification, and the whole run stays short
CALIBRATION_TIMING = TimingRule(min_rounds=5, max_rounds=12, precision=0.03, max_seconds=30.0, block_ms=40.0)


def calibration_plans(profile: Profile, random_plans: int, seed: int = CALIBRATION_SEED
                      ) -> list[tuple[str, tuple[int, ...], bool]]:
    """(kind, grid level per profile layer, held out) of the plans a profile is calibrated on: every layer at
    the level nearest each of ``UNIFORM_SPARSITIES``, then ``random_plans`` seeded mixes in which every fusion
    block (``Profile.blocks``) is dense or at a random sparse level, every ``HOLDOUT_EVERY``-th held out."""
    grid, names = profile.grid, profile.layer_names
    uniform = sorted({min(range(1, len(grid)), key=lambda k: abs(grid[k] - s)) for s in UNIFORM_SPARSITIES})
    plans = [("uniform", tuple([k] * len(names)), False) for k in uniform]
    rng = np.random.default_rng(seed)
    position = {name: i for i, name in enumerate(names)}
    for index in range(random_plans):
        levels = [0] * len(names)
        for block in profile.blocks():
            dense = rng.random() < DENSE_SHARES[index % len(DENSE_SHARES)]
            level = 0 if dense else int(rng.integers(1, len(grid)))
            for name in block:
                levels[position[name]] = level
        plans.append(("random", tuple(levels), index % HOLDOUT_EVERY == HOLDOUT_EVERY - 1))
    return plans


def calibrate(profile: Profile, bundle: ModelBundle, backend: TimingBackend, dense_onnx: Path,
              inputs: list, folder: Path, random_plans: int, log: Callable[[str], None]) -> Profile:
    """``profile`` calibrated on its ``calibration_plans``, timed here against the dense export ``dense_onnx``
    in one interleaved run of real engine calls (``CALIBRATION_TIMING``)."""
    plans = calibration_plans(profile, random_plans)
    names, grid = profile.layer_names, profile.grid
    log(f"[profile] calibrating on real engine calls: exporting {len(plans)} real-zero plans")
    paths = [str(export_pruned(bundle, {n: grid[k] for n, k in zip(names, levels, strict=True)},
                               folder / f"calib-{i}.onnx", profile.deployment))
             for i, (_, levels, _) in enumerate(plans)]
    int8 = profile.deployment.resolved().precision == "int8"
    fp32 = [str(export_onnx(bundle, folder / "dense-fp32.onnx", FP32))] if int8 else []
    log(f"[profile] timing {len(plans)} plans against dense{' (and the dense fp32 model)' if fp32 else ''} (about "
        f"{CALIBRATION_TIMING.max_seconds:.0f} s at most after compiling)")
    timed = backend.time_rounds([str(dense_onnx)] + paths + fp32, inputs, profile.batch_size, profile.cores,
                                CALIBRATION_TIMING)
    dense, dense_ms = timed.samples[0], timed.median_ms(0)
    baseline = {}
    if fp32:  # the quantized dense model against the fp32 one, timed in the same run
        over_fp32 = paired_speedup(timed.samples[-1], dense)
        baseline = {"dense_fp32_ms": round(timed.median_ms(len(timed.samples) - 1), 5),
                    "dense_int8_ms": round(dense_ms, 5),
                    "int8_speedup_over_fp32": [round(v, 5) for v in (over_fp32.speedup, over_fp32.low, over_fp32.high)]}
        Path(fp32[0]).unlink()
    points = []
    for model, (kind, levels, heldout) in enumerate(plans, start=1):
        paired = paired_speedup(dense, timed.samples[model])
        points.append(EnginePoint(levels=levels, speedup=paired.speedup, low=paired.low, high=paired.high,
                                  dense_ms=dense_ms, pruned_ms=timed.median_ms(model),
                                  kind=kind, heldout=heldout))
    for path in paths:
        Path(path).unlink()
    engine = {**profile.engine, **baseline, "calibration_rounds": timed.rounds,
              "calibration_other_processes_cpu": None if timed.busy is None else round(timed.busy, 3)}
    calibrated = replace(profile, engine=engine).with_engine_points(points, dense_ms)
    log(f"[profile] {calibrated.calibration_label()} ({timed.rounds} rounds; analysis alone: "
        f"{_uncorrected(calibrated)})")
    return calibrated


def _uncorrected(profile: Profile) -> str:
    error = profile.correction.fit_error if profile.correction else {}
    if "uncorrected_heldout_median" not in error:
        return "no held-out plan"
    return f"{error['uncorrected_heldout_median']:.1%} median, {error['uncorrected_heldout_max']:.1%} max"
