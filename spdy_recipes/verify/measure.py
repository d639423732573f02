"""End-to-end DeepSparse latency of a dense and a pruned ONNX model, measured interleaved in one run."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")


@dataclass(frozen=True)
class SpeedupMeasurement:
    """Median per-batch latencies and their ratio."""

    dense_ms: float
    pruned_ms: float
    rounds: int

    @property
    def speedup(self) -> float:
        return self.dense_ms / self.pruned_ms


def measure_speedup(
    dense_onnx: str, pruned_onnx: str, inputs: list[np.ndarray], batch_size: int, num_cores: int,
    rounds: int = 20, warmup: int = 3,
) -> SpeedupMeasurement:
    """Compile both models, then alternate dense and pruned runs so that machine noise hits both alike."""
    from deepsparse import Engine

    engines = [Engine(path, batch_size=batch_size, num_cores=num_cores) for path in (dense_onnx, pruned_onnx)]
    for engine in engines:
        for _ in range(warmup):
            engine.run(inputs)
    samples: list[list[float]] = [[], []]
    for _ in range(rounds):
        for index, engine in enumerate(engines):
            start = time.perf_counter()
            engine.run(inputs)
            samples[index].append((time.perf_counter() - start) * 1000.0)
    return SpeedupMeasurement(statistics.median(samples[0]), statistics.median(samples[1]), rounds)
