"""How far to trust a speedup measured on a shared machine: a confidence interval for a speedup measured as
interleaved dense/pruned pairs (other processes' CPU use is ``profile.hardware.CpuLoad``)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


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
