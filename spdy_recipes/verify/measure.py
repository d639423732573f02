"""End-to-end engine latency of a model pruned one-shot to given sparsities, against dense, in one run."""

from __future__ import annotations

import copy
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..models import ModelBundle
from ..onnx_export import export_onnx
from ..profile.backends import TimingBackend
from .oneshot import magnitude_prune


@dataclass(frozen=True)
class SpeedupMeasurement:
    """Median per-call latencies of dense and pruned, and their ratio."""

    dense_ms: float
    pruned_ms: float
    samples: int

    @property
    def speedup(self) -> float:
        return self.dense_ms / self.pruned_ms


class PlanTimer:
    """Times pruned variants of one model against its dense export, alternating in blocks.

    Use as a context manager: the exports live in a temporary folder.
    """

    def __init__(self, bundle: ModelBundle, backend: TimingBackend, cores: int, rounds: int = 10, block: int = 5):
        self.bundle, self.backend, self.cores = bundle, backend, cores
        self.rounds, self.block = rounds, block
        self.inputs = [tensor.numpy() for tensor in bundle.inputs.values()]
        self._tmp = tempfile.TemporaryDirectory(prefix="spdy-verify-")
        self._count = 0
        self.dense_onnx = str(export_onnx(bundle, Path(self._tmp.name) / "dense.onnx"))

    def __enter__(self) -> PlanTimer:
        return self

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()

    def export_pruned(self, sparsities: dict[str, float]) -> str:
        """Magnitude-prune a copy of the model to ``sparsities`` and export it."""
        pruned = copy.deepcopy(self.bundle)
        magnitude_prune(pruned.module, sparsities)
        self._count += 1
        return str(export_onnx(pruned, Path(self._tmp.name) / f"pruned-{self._count}.onnx"))

    def measure(self, sparsities: dict[str, float]) -> SpeedupMeasurement:
        """The measured speedup of the model pruned to ``sparsities``."""
        return self.measure_onnx(self.export_pruned(sparsities))

    def measure_onnx(self, pruned_onnx: str) -> SpeedupMeasurement:
        dense, pruned = self.backend.time_calls([self.dense_onnx, pruned_onnx], self.inputs,
                                                self.bundle.batch_size, self.cores, self.rounds, self.block)
        return SpeedupMeasurement(statistics.median(dense), statistics.median(pruned), len(pruned))
