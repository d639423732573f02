"""Measure a hardware profile: export the model, analyse it in the engine at every grid level, repeatedly."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .. import __version__
from ..errors import SpdyError
from ..models import ModelBundle
from ..models.fingerprint import graph_hash
from ..onnx_export import export_onnx
from .backends import TimingBackend
from .flags import profile_flags
from .layer_map import LayerMap
from .schema import LayerTimes, Profile


@dataclass(frozen=True)
class TimingSettings:
    """How hard to measure: analysed runs per level and repeat, warm-up runs, independent repeats."""

    iterations: int = 5
    warmup: int = 2
    repeats: int = 3

    def check(self) -> None:
        if self.iterations < 1 or self.warmup < 0 or self.repeats < 1:
            raise SpdyError("--iterations and --repeats must be at least 1 and --warmup at least 0")


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
    spread over levels instead of biasing one of them.
    """
    timing.check()
    inputs = [tensor.numpy() for tensor in bundle.inputs.values()]
    levels = len(grid)
    with tempfile.TemporaryDirectory(prefix="spdy-profile-") as tmp:
        onnx_path = export_onnx(bundle, Path(tmp) / "model.onnx")
        layer_map = LayerMap.build(bundle, onnx_path)
        layers = layer_map.layers
        samples = {layer.name: [[] for _ in grid] for layer in layers}
        kernels = {layer.name: [""] * levels for layer in layers}
        other: list[list[float]] = [[] for _ in grid]
        total: list[list[float]] = [[] for _ in grid]
        overheads: list[float] = []
        started = time.monotonic()
        for repeat in range(timing.repeats):
            for index, sparsity in enumerate(grid):
                run = backend.analyze(str(onnx_path), inputs, bundle.batch_size, num_cores, sparsity,
                                      timing.iterations, timing.warmup)
                per_layer, tail, run_kernels = layer_map.split(run)
                for name, value in per_layer.items():
                    samples[name][index].append(round(value, 5))
                    if repeat == 0:
                        kernels[name][index] = run_kernels[name]
                other[index].append(round(tail, 5))
                total[index].append(round(run.total_ms, 5))
                if sparsity == 0:
                    overheads.append(round(call_overhead(backend, str(onnx_path), inputs, bundle.batch_size,
                                                         num_cores, run.total_ms, timing.iterations), 5))
                log(f"[profile] repeat {repeat + 1}/{timing.repeats} level {index + 1}/{levels} sparsity "
                    f"{sparsity:.4f}: {run.total_ms:.2f} ms ({time.monotonic() - started:.0f} s elapsed)")
    layer_times = [
        LayerTimes(layer.name, layer.module, layer.kind, list(layer.shape), layer_map.flops[layer.name],
                   samples[layer.name], kernels[layer.name])
        for layer in layers
    ]
    profile = Profile(
        model={
            "spec": bundle.spec,
            "graph_hash": graph_hash(bundle),
            "batch_size": bundle.batch_size,
            "input_shapes": {name: list(t.shape) for name, t in bundle.inputs.items()},
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
            "method": "per-op analysis with imposed kernel sparsity; fused ops split by FLOPs",
        },
        grid=list(grid),
        layers=layer_times,
        other_samples_ms=other,
        total_samples_ms=total,
        flags={},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tool_version=__version__,
    )
    profile.flags = profile_flags(profile.layers, profile.level_spread())
    return profile


def call_overhead(backend: TimingBackend, onnx_path: str, inputs: list, batch_size: int, num_cores: int,
                  analysed_ms: float, calls: int) -> float:
    """What a real engine call of the model costs beyond its analysed operations, timed right after the
    analysis so that both see the same machine state (the median over repeats is what the profile uses)."""
    timed = backend.time_calls([onnx_path], inputs, batch_size, num_cores, rounds=1, block=calls + 1)[0]
    return statistics.median(timed) - analysed_ms
