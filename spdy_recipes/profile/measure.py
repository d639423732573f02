"""Measure a hardware profile: export the model, analyse it in the engine at every grid level, repeatedly."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..deployment import FP32, Deployment
from ..errors import SpdyError, warn
from ..models import ModelBundle
from ..models.export import engine_inputs, export_onnx, export_pruned
from ..models.fingerprint import graph_hash
from ..models.quantize import check_integer
from ..progress import progress
from .backends import TimingBackend
from .engine import TimingRule
from .engine_calibration import calibrate
from .flags import NOISY_LEVEL, profile_flags
from .hardware import CpuLoad
from .layer_map import LayerMap
from .schema import LayerTimes, Profile

DESIGN_SEED = 0
BUSY_WARNING = 0.25  # other processes' share of the CPU during profiling above which the profile warns
REMEASURED_SHARE = 8  # at most one level in this many has its outlying repeat analysed again
SUPPORTED_WARNING = 0.85  # engine.fraction_of_supported_ops below which the profile warns (README: Supported models)


DESIGNS = ("uniform", "mixed")


@dataclass(kw_only=True, frozen=True)
class TimingSettings:
    """How to measure: analysed runs per level and repeat, warm-up runs, independent repeats, the
    design of the runs (``uniform``: every prunable kernel at one imposed sparsity per run; ``mixed``:
    real zeros, every layer at its own level, each layer visiting every level once per repeat), and how many
    random per-block plans calibrate the table on real engine calls (``engine_calibration``; 0: none, the
    profile is uncalibrated)."""

    iterations: int = 5
    warmup: int = 2
    repeats: int = 3
    design: str | None = None  # None: ``uniform`` for fp32, ``mixed`` for INT8 (``run_design``)
    calibration_plans: int = 12
    deployment: Deployment = FP32  # the precision and mask type the exports are timed in

    @property
    def run_design(self) -> str:
        """The design the runs use: the one asked for, else ``mixed`` for INT8 or block-4 (the engine's imposed
        sparsity knows no mask type, and does not give INT8 the speed of real block-4 zeros: ResNet18 at 0.8,
        42 ms imposed against 21 ms for a real block-4 export, measured on an AVX-512 VNNI Xeon) and
        ``uniform`` for fp32 unstructured."""
        if self.design is not None:
            return self.design
        return "uniform" if self.deployment.resolved() == FP32 else "mixed"

    def check(self) -> None:
        """Raises SpdyError on out-of-range settings, an unknown precision or mask type, and an INT8 profile
        asked for the uniform design (imposed sparsity)."""
        if self.iterations < 1 or self.warmup < 0 or self.repeats < 1:
            raise SpdyError("--iterations and --repeats must be at least 1 and --warmup at least 0")
        if self.calibration_plans < 0:
            raise SpdyError(f"--calibration-plans must be at least 0, got {self.calibration_plans}")
        if self.run_design not in DESIGNS:
            raise SpdyError(f"--design must be one of {', '.join(DESIGNS)}, got {self.design!r}")
        if self.deployment.resolved() != FP32 and self.run_design != "mixed":
            raise SpdyError("--precision int8 and --mask-type block4 need --design mixed: the engine's imposed "
                            "sparsity knows no mask type and does not time INT8 block-4 kernels (it reads ResNet18 "
                            "at 0.8 twice as slow as a real block-4 export)")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_profile(
    bundle: ModelBundle,
    grid: list[float],
    num_cores: int,
    hardware_name: str,
    backend: TimingBackend,
    timing: TimingSettings = TimingSettings(),
    log: Callable[[str], None] = _stderr,
) -> Profile:
    """Time every Conv/Linear layer of ``bundle`` at every ``grid`` level inside the whole model.

    Repeat r analyses every level once before repeat r+1 starts, so slow phases of a shared machine
    spread over levels instead of biasing one of them; with 3 repeats or more, the levels whose repeats
    disagree most (``disagreeing_levels``) have their outlying repeat analysed again at twice the iterations.
    Every model is exported in ``timing.deployment`` (its precision, and its mask type for real zeros). With
    the ``mixed`` design (``timing.run_design``) each run is a
    magnitude-pruned model whose layers sit at different levels (a Latin design: layer i at level
    (run + shift_i) mod levels, shifts seeded by ``DESIGN_SEED``, so the same model gets the same
    design): every table entry is a layer's time next to neighbours at other levels, as in the plans
    the DP picks; each repeat also analyses the dense model, the speedup's reference. Progress with the
    time left goes to ``log``; a machine busy with other processes (``BUSY_WARNING``) makes it warn.
    """
    timing.check()
    deployment = timing.deployment.resolved()
    levels = len(grid)
    mixed = timing.run_design == "mixed"
    rng = np.random.default_rng(DESIGN_SEED)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spdy-profile-") as tmp:
        onnx_path = export_onnx(bundle, Path(tmp) / "model.onnx", deployment)
        inputs = engine_inputs(bundle, onnx_path)
        layer_map = LayerMap.build(bundle, onnx_path)
        layers = layer_map.layers
        warn_left_dense(layer_map.left_dense)
        fp32_layers = warn_left_fp32(onnx_path, layer_map) if deployment.precision == "int8" else []
        supported = None
        samples: dict[str, list[list[float]]] = {layer.name: [[] for _ in grid] for layer in layers}
        kernels = {layer.name: [""] * levels for layer in layers}
        other: list[list[float]] = [[] for _ in grid]
        total: list[list[float]] = [[] for _ in grid]
        fused: list[list[list[str]]] = [[] for _ in grid]
        dense_totals: list[float] = []
        shifts: list[list[int]] = []
        overheads: list[float] = []
        with CpuLoad() as load, progress(timing.repeats * levels, "profile", log) as step:
            for repeat in range(timing.repeats):
                if mixed:  # this repeat's design, and its dense reference
                    shifts.append([int(v) for v in rng.integers(0, levels, size=len(layers))])
                    design = mixed_design(shifts[-1], levels)
                    run = backend.analyze(str(onnx_path), inputs, bundle.batch_size, num_cores, 0.0,
                                          timing.iterations, timing.warmup)
                    dense_totals.append(round(run.total_ms, 5))
                    overheads.append(round(call_overhead(backend, str(onnx_path), inputs, bundle.batch_size,
                                                         num_cores, run.total_ms, timing.iterations), 5))
                for index, sparsity in enumerate(grid):
                    if mixed:  # run ``index``: layer i at level (index + shift_i) mod levels, real zeros
                        level_of = {layer.name: level for layer, level in zip(layers, design[index], strict=True)}
                        path = export_pruned(bundle, {n: grid[k] for n, k in level_of.items()},
                                             Path(tmp) / "mixed.onnx", deployment)
                        run = backend.analyze(str(path), inputs, bundle.batch_size, num_cores, 0.0,
                                              timing.iterations, timing.warmup)
                        path.unlink()
                    else:
                        level_of = {layer.name: index for layer in layers}
                        run = backend.analyze(str(onnx_path), inputs, bundle.batch_size, num_cores, sparsity,
                                              timing.iterations, timing.warmup)
                    if supported is None and run.supported_fraction is not None:
                        supported = run.supported_fraction
                        if supported < SUPPORTED_WARNING:
                            warn(f"{backend.name} runs only {supported:.0%} of {bundle.spec}'s operations in its "
                                 "optimised kernels; the rest run in slow generic code that pruning does not speed "
                                 "up, so expect little or no speedup (the profile records "
                                 "engine.fraction_of_supported_ops)")
                    per_layer, tail, run_kernels = layer_map.split(run)
                    for name, value in per_layer.items():
                        samples[name][level_of[name]].append(round(value, 5))
                        if not kernels[name][level_of[name]]:
                            kernels[name][level_of[name]] = run_kernels[name]
                    fused[index].extend(g for g in layer_map.fused_groups(run) if g not in fused[index])
                    other[index].append(round(tail, 5))
                    total[index].append(round(run.total_ms, 5))
                    if sparsity == 0 and not mixed:
                        overheads.append(round(call_overhead(backend, str(onnx_path), inputs, bundle.batch_size,
                                                             num_cores, run.total_ms, timing.iterations), 5))
                    step(f"repeat {repeat + 1}/{timing.repeats} {'run' if mixed else 'level'} {index + 1}/{levels}"
                         + ("" if mixed else f" sparsity {sparsity:.4f}") + f": {run.total_ms:.2f} ms")
            remeasured = [] if mixed or timing.repeats < 3 else disagreeing_levels(total, levels // REMEASURED_SHARE)
            for index in remeasured:  # the repeat farthest from the others, analysed again at twice the iterations
                run = backend.analyze(str(onnx_path), inputs, bundle.batch_size, num_cores, grid[index],
                                      2 * timing.iterations, timing.warmup)
                middle = statistics.median(total[index])
                worst = max(range(len(total[index])), key=lambda r: abs(total[index][r] - middle))
                per_layer, tail, _ = layer_map.split(run)
                for name, value in per_layer.items():
                    samples[name][index][worst] = round(value, 5)
                other[index][worst], total[index][worst] = round(tail, 5), round(run.total_ms, 5)
        if load.busy is not None and load.busy > BUSY_WARNING:
            warn(f"other processes used {load.busy:.0%} of the CPU while the profile was measured: its times are "
                 f"inflated and noisy; measure again on a quiet machine (--force)")
        layer_times = [
            LayerTimes(name=layer.name, module=layer.module, kind=layer.kind, shape=list(layer.shape),
                       flops=layer_map.flops[layer.name],
                       samples_ms=samples[layer.name], kernels=kernels[layer.name])
            for layer in layers
        ]
        profile = Profile(
            model={
                "spec": bundle.spec,
                "graph_hash": graph_hash(bundle),
                "batch_size": bundle.batch_size,
                "input_shapes": {name: list(t.shape) for name, t in bundle.inputs.items()},
                "left_dense": layer_map.left_dense,
                **({"num_classes": bundle.num_classes} if bundle.num_classes is not None else {}),
                **({"precision": deployment.precision, "mask_type": deployment.mask_type, "left_fp32": fp32_layers}
                   if deployment != FP32 else {}),
            },
            hardware={"name": hardware_name, **backend.describe_host()},
            engine={
                "name": backend.name,
                "version": backend.version(),
                "num_cores": num_cores,
                "iterations": timing.iterations,
                "warmup_iterations": timing.warmup,
                "repeats": timing.repeats,
                "call_overhead_ms": round(max(0.0, statistics.median(overheads)), 5),
                "call_overhead_samples_ms": overheads,
                "method": ("per-op analysis of real-zero mixed-sparsity models (each layer at every level once per "
                           "repeat, levels shifted by a seeded random offset per layer); fused ops split by FLOPs"
                           if mixed else "per-op analysis with imposed kernel sparsity; fused ops split by FLOPs"),
                "design": timing.run_design,
                **({"design_shifts": shifts} if mixed else {}),
                "other_processes_cpu": None if load.busy is None else round(load.busy, 3),
                "fraction_of_supported_ops": supported,
                "analysis_seconds": round(time.monotonic() - started, 1),
                "remeasured_levels": remeasured,
            },
            grid=list(grid),
            layers=layer_times,
            other_samples_ms=other,
            total_samples_ms=total,
            dense_total_samples_ms=dense_totals,
            fused_groups=fused,
            flags={},
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            tool_version=__version__,
        )
        profile.flags = profile_flags(profile.layers, profile.level_spread())
        if timing.calibration_plans:
            started = time.monotonic()
            profile = calibrate(profile, bundle, backend, onnx_path, inputs, Path(tmp), timing.calibration_plans,
                                log)
            profile.engine["calibration_seconds"] = round(time.monotonic() - started, 1)
    return profile


def disagreeing_levels(total: list[list[float]], most: int) -> list[int]:
    """The levels whose repeated whole-model times spread (max - min over median) beyond ``NOISY_LEVEL``, the
    ``most`` widest first: their outlying repeat is analysed again."""
    spread = {k: (max(t) - min(t)) / statistics.median(t) for k, t in enumerate(total) if len(t) > 1}
    noisy = sorted((k for k, value in spread.items() if value > NOISY_LEVEL), key=lambda k: -spread[k])
    return sorted(noisy[:most])


def warn_left_dense(left_dense: dict[str, str]) -> None:
    """One warning per reason, naming the weights no recipe will prune (depthwise layers, dense in every
    model DeepSparse runs, go unsaid; ``inspect`` lists them all)."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in left_dense.items():
        if not reason.startswith("depthwise"):
            by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        warn(f"left dense: {shown}: {reason}")


def warn_left_fp32(onnx_path: Path, layer_map: LayerMap) -> list[str]:
    """The prunable layers the INT8 export left in fp32 (``models.quantize.check_integer``), named in one
    warning; SpdyError when none became an integer op."""
    left = check_integer(onnx_path, layer_map.output_module, {layer.name: layer.module for layer in layer_map.layers})
    if left:
        shown = ", ".join(left[:4]) + (f" and {len(left) - 4} more" if len(left) > 4 else "")
        warn(f"left in fp32 by the INT8 export: {shown}: the engine runs them without integer kernels")
    return left


def mixed_design(shifts: list[int], levels: int) -> list[list[int]]:
    """One repeat of the mixed design: ``levels`` runs, run k putting layer i at level (k + shifts[i]) mod
    ``levels``, so that every layer visits every level exactly once."""
    return [[(run + shift) % levels for shift in shifts] for run in range(levels)]


def call_overhead(backend: TimingBackend, onnx_path: str, inputs: list, batch_size: int, num_cores: int,
                  analysed_ms: float, calls: int) -> float:
    """What a real engine call of the model costs beyond its analysed operations, timed right after the
    analysis so that both see the same machine state (the median over repeats is what the profile uses)."""
    rule = TimingRule(min_rounds=1, max_rounds=1, block=calls)
    timed = backend.time_rounds([onnx_path], inputs, batch_size, num_cores, rule).samples[0][0]
    return statistics.median(timed) - analysed_ms
