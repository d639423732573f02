"""End-to-end engine latency of a model pruned one-shot to given sparsities, against dense, in one run."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..deployment import FP32, Deployment
from ..models import ModelBundle
from ..models.export import engine_inputs, export_onnx, export_pruned
from ..profile.backends import TimingBackend
from ..profile.engine import TimingRule
from ..profile.noise import paired_speedup

NOTED_LOAD = 0.05  # other processes' share of the CPU above which a measurement says so


@dataclass(kw_only=True, frozen=True)
class SpeedupMeasurement:
    """Median per-call latencies (ms) of dense and pruned, the speedup, and how far to trust it: the
    median and confidence interval of the paired per-round speedups (``noise.paired_speedup``) and the
    share of the machine's CPU other processes used meanwhile (``profile.hardware.CpuLoad``; None where
    unknown)."""

    dense_ms: float
    pruned_ms: float
    samples: int
    low: float | None = None
    high: float | None = None
    busy: float | None = None
    paired: float | None = None  # median of the per-round dense/pruned ratios

    @property
    def speedup(self) -> float:
        """The paired speedup when measured in rounds, else the ratio of the medians."""
        return self.paired if self.paired is not None else self.dense_ms / self.pruned_ms

    def describe(self) -> str:
        """``1.520x (1.49-1.55)``, with the interval when known."""
        interval = f" ({self.low:.2f}-{self.high:.2f})" if self.low is not None and self.high is not None else ""
        return f"{self.speedup:.3f}x{interval}"

    def record(self, layer_ms: dict[str, float] | None = None) -> dict[str, Any]:
        """What a recipe's metadata records of it (keys become ``measured_<key>``), with the pruned model's
        in-context layer times (``PlanTimer.layer_times``) when they were analysed."""
        interval = [round(self.low, 4), round(self.high, 4)] if self.low is not None and self.high is not None else None
        return {"speedup": round(self.speedup, 4), "interval": interval,
                "other_processes_cpu": None if self.busy is None else round(self.busy, 3),
                "dense_ms": round(self.dense_ms, 4), "pruned_ms": round(self.pruned_ms, 4),
                **({"layer_ms": layer_ms} if layer_ms else {})}

    def load_note(self) -> str:
        """``; other processes used 48% of the CPU`` when that was measured and above ``NOTED_LOAD``."""
        return f"; other processes used {self.busy:.0%} of the CPU" if self.busy and self.busy > NOTED_LOAD else ""


class PlanTimer:
    """Times pruned variants of one model against its dense export, alternating in blocks of calls that last
    about ``TimingRule.block_ms`` each, ``rounds`` rounds at least and more until the speedup's 95% interval is
    within ``TimingRule.precision`` (or its time cap).

    Pruned models are exported in ``deployment`` (precision and mask type), the dense reference in the
    ``baseline`` precision (an INT8 plan measured over dense fp32: what the user runs today).
    Use as a context manager: the exports live in a temporary folder.
    """

    def __init__(self, bundle: ModelBundle, backend: TimingBackend, cores: int, rounds: int = 10,
                 deployment: Deployment = FP32, baseline: str = "fp32"):
        self.bundle, self.backend, self.cores = bundle, backend, cores
        self.deployment = deployment.resolved()  # how the pruned models are exported
        self.rule = TimingRule(min_rounds=rounds, max_rounds=max(rounds, TimingRule.max_rounds))
        self._tmp = tempfile.TemporaryDirectory(prefix="spdy-verify-")
        self._count = 0
        dense = self.deployment if baseline == self.deployment.precision else Deployment(baseline).resolved()
        self.dense_onnx = export_onnx(bundle, Path(self._tmp.name) / "dense.onnx", dense)  # the baseline
        self.inputs = engine_inputs(bundle, self.dense_onnx)

    def __enter__(self) -> PlanTimer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def export_pruned(self, sparsities: dict[str, float]) -> str:
        """Magnitude-prune a copy of the model to ``sparsities`` and export it."""
        self._count += 1
        return str(export_pruned(self.bundle, sparsities, Path(self._tmp.name) / f"pruned-{self._count}.onnx",
                                 self.deployment))

    def measure_model(self, model: ModelBundle) -> SpeedupMeasurement:
        """The measured speedup of ``model`` (already sparse, e.g. trained with a recipe; INT8 after its
        quantization-aware training, with the scales it learnt) over the dense one, exported in the timer's
        deployment."""
        self._count += 1
        path = Path(self._tmp.name) / f"pruned-{self._count}.onnx"
        return self.measure_onnx(str(export_onnx(model, path, self.deployment)))

    def measure(self, sparsities: dict[str, float]) -> SpeedupMeasurement:
        """The measured speedup of the model pruned to ``sparsities``."""
        return self.measure_onnx(self.export_pruned(sparsities))

    def layer_times(self, sparsities: dict[str, float], iterations: int = 5, warmup: int = 2) -> dict[str, float]:
        """Each prunable layer's median time (ms) inside the model pruned one-shot to ``sparsities``, from the
        engine's per-operation analysis, split over layers as a profile splits it (``profile.layer_map``):
        where the plan's layers actually spend their time next to each other."""
        from ..profile.layer_map import LayerMap

        pruned = self.export_pruned(sparsities)
        layer_map = LayerMap.build(self.bundle, Path(pruned))
        run = self.backend.analyze(pruned, self.inputs, self.bundle.batch_size, self.cores, 0.0, iterations, warmup)
        return {name: round(ms, 4) for name, ms in layer_map.split(run)[0].items()}

    def measure_onnx(self, pruned_onnx: str) -> SpeedupMeasurement:
        """Time the exported pruned model against dense in interleaved rounds (``self.rule``)."""
        timed = self.backend.time_rounds([str(self.dense_onnx), pruned_onnx], self.inputs, self.bundle.batch_size,
                                         self.cores, self.rule)
        dense_rounds, pruned_rounds = timed.samples
        paired = paired_speedup(dense_rounds, pruned_rounds)
        return SpeedupMeasurement(dense_ms=timed.median_ms(0), pruned_ms=timed.median_ms(1),
                                  samples=timed.rounds * timed.block, low=paired.low,
                                  high=paired.high, busy=timed.busy, paired=paired.speedup)
