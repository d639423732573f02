"""From a profile, a target speedup and error estimates to per-layer sparsities with a hard latency bound."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpdyError
from ..profile import Profile
from .dp import DEFAULT_BUCKETS, solve_min_error


@dataclass
class Plan:
    """The solved profile: a grid level per selected layer and its predicted latency."""

    target_speedup: float
    dense_ms: float
    budget_ms: float
    predicted_ms: float
    max_speedup: float
    sparsities: dict[str, float]  # every profile layer; 0.0 = dense (unselected layers are always dense)
    times_ms: dict[str, float]
    total_error: float

    @property
    def predicted_speedup(self) -> float:
        return self.dense_ms / self.predicted_ms

    @property
    def pruned(self) -> dict[str, float]:
        """The layers the recipe prunes, with their sparsity."""
        return {name: s for name, s in self.sparsities.items() if s > 0}


def plan_profile(
    profile: Profile,
    speedup: float,
    selected: list[str],
    errors: np.ndarray,
    buckets: int = DEFAULT_BUCKETS,
) -> Plan:
    """Solve the SPDY DP for ``speedup`` over the ``selected`` layers; all other layers stay dense.

    Everything is charged to the budget: the fixed (non-layer) time and the dense time of layers that
    are not selected. ``errors`` is (selected layers x grid levels).
    """
    if not speedup > 1.0:
        raise SpdyError(f"--speedup must be greater than 1, got {speedup}")
    by_name = {layer.name: layer for layer in profile.layers}
    unknown = [name for name in selected if name not in by_name]
    if unknown:
        raise SpdyError(f"layer(s) {', '.join(unknown[:5])} are not in the profile")
    chosen = set(selected)
    times = np.array([by_name[name].times_ms for name in selected])
    if errors.shape != times.shape:
        raise SpdyError(f"error table shape {errors.shape} does not match {times.shape} (layers x levels)")

    dense_ms = profile.dense_ms
    target_ms = dense_ms / speedup
    fixed_ms = profile.fixed_ms + sum(layer.times_ms[0] for layer in profile.layers if layer.name not in chosen)
    budget_ms = target_ms - fixed_ms
    fastest = times.argmin(axis=1)
    fastest_ms = fixed_ms + float(times.min(axis=1).sum())
    max_speedup = dense_ms / fastest_ms
    if fastest_ms > target_ms:
        raise SpdyError(
            f"speedup {speedup:.3f}x is infeasible on this profile: the best reachable is {max_speedup:.3f}x "
            f"(every selected layer at its fastest level)"
        )
    picks = solve_min_error(times, errors, budget_ms, buckets)
    if picks is None:  # only possible within rounding of the fastest profile, which fits exactly
        picks = [int(k) for k in fastest]
    picks_time = {name: float(times[i, k]) for i, (name, k) in enumerate(zip(selected, picks))}
    predicted_ms = fixed_ms + sum(picks_time.values())
    if predicted_ms > target_ms * (1 + 1e-12):
        raise AssertionError(f"solver broke the budget: {predicted_ms} > {target_ms}")
    sparsities = {layer.name: 0.0 for layer in profile.layers}
    times_ms = {layer.name: layer.times_ms[0] for layer in profile.layers}
    for name, level in zip(selected, picks):
        sparsities[name] = profile.grid[level]
        times_ms[name] = picks_time[name]
    total_error = float(sum(errors[i, k] for i, k in enumerate(picks)))
    return Plan(speedup, dense_ms, budget_ms, predicted_ms, max_speedup, sparsities, times_ms, total_error)
