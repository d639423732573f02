"""Multiple-choice knapsack: one option per layer, minimal total error under a time budget."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

DEFAULT_BUCKETS = 10_000
BUCKET_ROUNDING = 1e-9  # a time that fills whole buckets up to float error takes no extra bucket


def solve_min_error(
    times: npt.ArrayLike, errors: npt.ArrayLike, budget: float, buckets: int = DEFAULT_BUCKETS
) -> list[int] | None:
    """Pick one option per row minimising the summed error with summed time <= ``budget``.

    ``times`` and ``errors`` are (layers x options); an infinite time marks an option as unavailable.
    Times are rounded *up* to ``budget / buckets`` so the chosen options' exact total never exceeds the
    budget. Returns the option index per layer, or None when nothing fits. Among equal errors the
    fastest total is preferred.

    SPDY's DP (Frantar & Alistarh, ICML 2022, Algorithm 1: the speedup-constrained layer-wise compression problem),
    computed over the slack only: every layer needs at least its fastest option's buckets, so the table spans
    ``buckets`` minus their sum, and ``best[b]`` is the least error with at most ``b`` slack buckets spent
    (monotone, so an option slower and no more accurate than another is dropped up front). Each layer is one
    vectorised step: a min over the (options x slack) table of shifted previous rows."""
    times = np.asarray(times, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if times.shape != errors.shape or times.ndim != 2:
        raise ValueError("times and errors must be matching 2-D arrays")
    if budget < 0:
        return None
    steps = _bucket_steps(times, budget, buckets)
    usable = steps <= buckets
    if not usable.any(axis=1).all():
        return None
    floor = np.where(usable, steps, buckets + 1).min(axis=1)  # each layer's fastest option
    slack = buckets - int(floor.sum())
    if slack < 0:
        return None
    best = np.zeros(slack + 1)  # least error so far with at most b slack buckets spent
    options, shifts, choices = [], [], []
    for layer in range(len(times)):
        shifted = steps[layer] - floor[layer]
        keep = _pareto(shifted, errors[layer], usable[layer] & (shifted <= slack))
        shift = shifted[keep]
        padded = np.concatenate([np.full(slack, math.inf), best])
        candidates = sliding_window_view(padded, slack + 1)[slack - shift] + errors[layer, keep][:, None]
        pick = candidates.argmin(axis=0)  # the first of equal errors: the faster option
        best = candidates[pick, np.arange(slack + 1)]
        options.append(keep)
        shifts.append(shift)
        choices.append(pick.astype(np.int32))
    if not math.isfinite(best[-1]):
        return None
    spent = int(np.argmax(best == best[-1]))  # the fewest buckets reaching the least error
    picks = []
    for layer in range(len(times) - 1, -1, -1):
        index = int(choices[layer][spent])
        picks.append(int(options[layer][index]))
        spent -= int(shifts[layer][index])
    return picks[::-1]


def _bucket_steps(times: npt.NDArray[np.float64], budget: float, buckets: int) -> npt.NDArray[np.int64]:
    """Every time in whole buckets of ``budget / buckets``, rounded up; unavailable options get ``buckets + 1``."""
    steps = np.full(times.shape, buckets + 1, dtype=np.int64)
    finite = np.isfinite(times)
    if budget == 0:
        steps[finite] = np.where(times[finite] > 0, buckets + 1, 0)
        return steps
    bucket = budget / buckets
    steps[finite] = np.ceil(times[finite] / bucket - BUCKET_ROUNDING).clip(min=0, max=buckets + 1).astype(np.int64)
    return steps


def _pareto(steps: npt.NDArray[np.int64], errors: npt.NDArray[np.float64],
            usable: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Indices of the usable options no other option beats on both time and error, fastest first (of equal
    time and error, the lowest index)."""
    index = np.flatnonzero(usable)
    order = index[np.lexsort((index, errors[index], steps[index]))]
    kept, least = [], math.inf
    for option in order:
        if errors[option] < least:
            kept.append(option)
            least = errors[option]
    return np.array(kept, dtype=np.int64)
