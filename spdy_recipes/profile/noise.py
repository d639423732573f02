"""How far to trust what the engine measured on a shared machine: a confidence interval for a speedup measured as
interleaved dense/pruned pairs (other processes' CPU use is ``profile.hardware.CpuLoad``), and a layer's analysed
times smoothed across neighbouring sparsity levels."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
LEVEL_WINDOW = 3  # sparse levels in the running median of a layer's analysed times


@dataclass(frozen=True)
class PairedSpeedup:
    """A speedup from interleaved rounds: per round, the median dense call over the median pruned call."""

    speedup: float  # median of the per-round ratios
    low: float  # lower end of the confidence interval (``CONFIDENCE``, bootstrap over rounds)
    high: float
    rounds: int


def paired_speedup(dense_rounds: list[list[float]], pruned_rounds: list[list[float]], seed: int = 0) -> PairedSpeedup:
    """The speedup of pruned over dense from ``rounds`` pairs of call-time lists (ms) measured one after the
    other, and a percentile-bootstrap confidence interval of its median over rounds (seeded: reproducible).

    Pairing cancels slow phases of a shared machine that hit both models of a round alike.
    Raises ValueError when the lists are empty or of different lengths.
    """
    if not dense_rounds or len(dense_rounds) != len(pruned_rounds) or not all(dense_rounds) or not all(pruned_rounds):
        raise ValueError("paired_speedup needs as many non-empty dense as pruned rounds")
    ratios = np.array([statistics.median(d) / statistics.median(p)
                       for d, p in zip(dense_rounds, pruned_rounds, strict=True)])
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(ratios, size=(BOOTSTRAP_RESAMPLES, len(ratios)), replace=True), axis=1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(medians, [tail, 1 - tail])
    return PairedSpeedup(float(np.median(ratios)), float(low), float(high), len(ratios))


def smoothed_across_levels(times_ms: Sequence[float]) -> list[float]:
    """A layer's analysed times (ms; the dense level first, then the grid's sparse levels in increasing order),
    each sparse level replaced by the median of itself and its neighbouring sparse levels (``LEVEL_WINDOW``, the
    end levels repeated); the dense level is kept. Shape: (levels,) in, (levels,) out.

    Why: the engine's analysis attributes a fused operation's time to its layers differently from run to run,
    so single entries of a row come out far too low (YOLOv5s: one layer read 7.9, 0.7, 7.7 ms at three
    neighbouring levels). The SPDY DP (Frantar & Alistarh 2022, Algorithm 1) picks exactly such entries; a
    running median removes one-level outliers and keeps a real trend, even a rising one (a running median,
    unlike a monotone fit, does not force time to fall with sparsity: MobileNetV2's depthwise layers do not).
    Measured on 89 plans of five models timed with real engine calls (AVX-512 Xeon, benchmarks/latency_model.py,
    none in the fit): the calibrated prediction's error on SPDY's own 2.0x plans fell from 15% to 7.5%
    (YOLOv5s) and from 7.3% to 1.0% (MPNet-base); over all 89, 2.7% median and 22% worst became 2.4% and 19%.
    """
    row = np.asarray(times_ms, dtype=float)
    if len(row) <= 2:
        return row.tolist()
    smoothed = row.copy()
    smoothed[1:] = median_filter(row[1:], size=LEVEL_WINDOW, mode="nearest")
    return smoothed.tolist()
