"""How far to trust a timing on a shared machine: other processes' CPU use during it, and a confidence
interval for a speedup measured as interleaved dense/pruned pairs."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


def _machine_cpu_s() -> float | None:
    """CPU seconds every process has used since boot (user + nice + system + irq + softirq + steal), from
    /proc/stat; None where there is no /proc."""
    stat = Path("/proc/stat")
    if not stat.is_file():
        return None
    fields = stat.read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in (fields + ["0"] * 8)[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class CpuLoad:
    """Measures, over a ``with`` block, the share of the machine's CPU that *other* processes used.

    ``busy`` is (machine CPU time - this process's CPU time) / (wall time x CPUs), in [0, 1]; None where
    /proc/stat is missing. A quiet machine reads near 0; one other process spinning on a 2-core machine, 0.5.
    """

    def __init__(self) -> None:
        self.busy: float | None = None

    def __enter__(self) -> CpuLoad:
        self._machine, self._own, self._wall = _machine_cpu_s(), _own_cpu_s(), time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        machine = _machine_cpu_s()
        if machine is None or self._machine is None:
            return
        wall = time.monotonic() - self._wall
        if wall <= 0:
            return
        other = (machine - self._machine) - (_own_cpu_s() - self._own)
        self.busy = min(1.0, max(0.0, other / (wall * (os.cpu_count() or 1))))


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
    ratios = np.array([statistics.median(d) / statistics.median(p) for d, p in zip(dense_rounds, pruned_rounds)])
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(ratios, size=(BOOTSTRAP_RESAMPLES, len(ratios)), replace=True), axis=1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(medians, [tail, 1 - tail])
    return PairedSpeedup(float(np.median(ratios)), float(low), float(high), len(ratios))


def split_rounds(samples: list[float], rounds: int) -> list[list[float]]:
    """A flat list of ``rounds`` equal blocks of call times, as the timing backend returns it, split by round."""
    if rounds < 1 or len(samples) % rounds:
        raise ValueError(f"{len(samples)} samples do not split into {rounds} rounds")
    size = len(samples) // rounds
    return [samples[i * size:(i + 1) * size] for i in range(rounds)]
