"""Multiple-choice knapsack: one option per layer, minimal total error under a time budget."""

from __future__ import annotations

import math

import numpy as np

DEFAULT_BUCKETS = 10_000


def solve_min_error(
    times: np.ndarray, errors: np.ndarray, budget: float, buckets: int = DEFAULT_BUCKETS
) -> list[int] | None:
    """Pick one option per row minimising the summed error with summed time <= ``budget``.

    ``times`` and ``errors`` are (layers x options); an infinite time marks an option as unavailable.
    Times are rounded *up* to ``budget / buckets`` so the chosen options' exact total never exceeds the
    budget. Returns the option index per layer, or None when nothing fits. Among equal errors the
    fastest total is preferred.
    """
    times = np.asarray(times, dtype=float)
    errors = np.asarray(errors, dtype=float)
    if times.shape != errors.shape or times.ndim != 2:
        raise ValueError("times and errors must be matching 2-D arrays")
    if budget < 0:
        return None
    layers, options = times.shape
    bucket = budget / buckets if budget > 0 else 1.0
    steps = np.full(times.shape, buckets + 1, dtype=np.int64)
    finite = np.isfinite(times)
    steps[finite] = np.ceil(times[finite] / bucket - 1e-9).clip(min=0).astype(np.int64)
    if budget == 0:
        steps[finite] = np.where(times[finite] > 0, buckets + 1, 0)

    best = np.full(buckets + 1, math.inf)
    best[0] = 0.0
    choice = np.full((layers, buckets + 1), -1, dtype=np.int32)
    for layer in range(layers):
        current = np.full(buckets + 1, math.inf)
        for option in range(options):
            step = int(steps[layer, option])
            if step > buckets:
                continue
            candidate = best[: buckets + 1 - step] + errors[layer, option]
            window = current[step:]
            better = candidate < window
            window[better] = candidate[better]
            choice[layer, step:][better] = option
        best = current
    if not np.isfinite(best).any():
        return None
    spent = int(np.argmin(best))
    picks = []
    for layer in range(layers - 1, -1, -1):
        option = int(choice[layer, spent])
        picks.append(option)
        spent -= int(steps[layer, option])
    return picks[::-1]
