"""Baseline sparsity allocations (uniform, global magnitude, LAMP, ERK) tuned to a predicted latency.

Each baseline turns one parameter into per-layer sparsities. ``tune_baseline`` searches that parameter
until the profile's predicted latency (median layer times, linear between grid levels) meets a target,
so that a baseline and a SPDY plan can be compared at equal predicted latency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from ..errors import SpdyError
from ..profile import Profile

BASELINES = ("uniform", "global_magnitude", "lamp", "erk")
DEFAULT_MAX_SPARSITY = 0.99
MAX_ITERATIONS = 60  # bisection steps
SCAN_POINTS = 64  # intervals of the parameter range scanned before bisecting
TUNE_TOLERANCE = 0.005  # a tuned baseline's predicted latency is within this fraction of the one asked for

Allocator = Callable[[float], npt.NDArray[np.float64]]  # parameter -> unclipped sparsity of each layer, in order


def interpolated_ms(times: Sequence[float], grid: Sequence[float], sparsity: float) -> float:
    """A layer's time (ms) at a continuous ``sparsity`` (a fraction), linear between the two neighbouring levels
    of the profile's ``grid`` (``times``: one per level). A sparsity above the grid's last level is clipped to
    it (the table says nothing beyond it). Raises SpdyError outside [0, 1]."""
    if not 0.0 <= sparsity <= 1.0:
        raise SpdyError(f"sparsity {sparsity} is not between 0 and 1")
    return float(np.interp(min(sparsity, grid[-1]), grid, times))


@dataclass(frozen=True)
class _Latency:
    """A profile's median time tables, read once for repeated predictions."""

    fixed_ms: float
    grid: list[float]
    times: dict[str, list[float]]

    @classmethod
    def of(cls, profile: Profile) -> _Latency:
        return cls(profile.fixed_ms, profile.grid, {layer.name: layer.times_ms for layer in profile.layers})

    def ms(self, sparsities: Mapping[str, float]) -> float:
        unknown = [name for name in sparsities if name not in self.times]
        if unknown:
            raise SpdyError(f"layer(s) {', '.join(unknown[:5])} are not in the profile")
        return self.fixed_ms + sum(interpolated_ms(times, self.grid, sparsities.get(name, 0.0))
                                   for name, times in self.times.items())


def predicted_ms(profile: Profile, sparsities: Mapping[str, float]) -> float:
    """Predicted latency: fixed time plus every profile layer's interpolated median time (layers missing
    from ``sparsities`` are dense). Equals ``Plan.predicted_ms`` for grid-level sparsities."""
    return _Latency.of(profile).ms(sparsities)


def allocate(method: str, weights: Mapping[str, torch.Tensor], parameter: float, *,
             max_sparsity: float = DEFAULT_MAX_SPARSITY) -> dict[str, float]:
    """Per-layer sparsity of the layers in ``weights`` by ``method`` at ``parameter`` in [0, 1].

    uniform: every layer at ``parameter``. global_magnitude: the fraction ``parameter`` of all weights
    with the smallest |w| is pruned. lamp: the same with LAMP scores (Lee et al. 2021), w² over the sum
    of w² of the layer's weights at least as large. erk: densities proportional to sum(dims)/prod(dims)
    with overall density 1 - ``parameter``, layers that would exceed 1 kept dense (Evci et al. 2020).
    Weights tied at the global threshold are kept. Every sparsity is clipped to [0, ``max_sparsity``].
    """
    if not 0.0 <= parameter <= 1.0:
        raise SpdyError(f"a baseline parameter must be between 0 and 1, got {parameter}")
    if not 0.0 <= max_sparsity <= 1.0:
        raise SpdyError(f"max_sparsity must be between 0 and 1, got {max_sparsity}")
    sparsities = _allocation(method, weights)(parameter)
    return {name: float(s) for name, s in zip(weights, np.clip(sparsities, 0.0, max_sparsity), strict=True)}


def _allocation(method: str, weights: Mapping[str, torch.Tensor]) -> Allocator:
    """The allocation of ``method`` over ``weights``, with its one-time work (sorting) done."""
    if method not in BASELINES:
        raise SpdyError(f"unknown baseline {method!r}: expected one of {', '.join(BASELINES)}")
    if not weights:
        raise SpdyError("no layer to allocate sparsity to")
    if method == "uniform":
        return lambda parameter: np.full(len(weights), parameter)
    if method == "erk":
        return _erk([tuple(w.shape) for w in weights.values()])
    scores = _magnitudes if method == "global_magnitude" else _lamp_scores
    return _global_rank([scores(_flat(w)) for w in weights.values()])


def _flat(weight: torch.Tensor) -> npt.NDArray[np.float32]:
    return weight.detach().cpu().float().numpy().ravel()


def _magnitudes(weight: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """|w| of every weight, ascending."""
    return np.sort(np.abs(weight))


def _lamp_scores(weight: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """LAMP score of every weight, ascending (Lee et al., "Layer-adaptive Sparsity for the Magnitude-based
    Pruning", ICLR 2021, section 3): w² over the sum of w² of the layer's weights at least as large in
    magnitude (ties included), so the largest weight scores 1. ``weight``: any shape; returns a flat array.
    Summed in float64, returned as float32 (both roundings keep the order)."""
    squares = np.sort(np.square(weight, dtype=np.float64))
    at_least = np.cumsum(squares[::-1])[::-1]  # at_least[i] = sum of squares[i:]
    starts = np.flatnonzero(np.diff(squares, prepend=-1.0))  # first index of every run of equal values
    at_least = np.repeat(at_least[starts], np.diff(starts, append=squares.size))
    scores: npt.NDArray[np.float64] = squares / np.maximum(at_least, np.finfo(np.float64).tiny)
    return scores.astype(np.float32)


def _global_rank(layers: list[npt.NDArray[np.float32]]) -> Allocator:
    """Prune the fraction ``parameter`` of all scores, smallest first (``layers``: each layer's scores,
    ascending). Sorts the concatenation once; each parameter then costs a binary search per layer."""
    everything = np.sort(np.concatenate(layers))

    def sparsities(parameter: float) -> npt.NDArray[np.float64]:
        pruned = round(parameter * everything.size)
        threshold = everything[pruned] if pruned < everything.size else np.inf
        return np.array([np.searchsorted(layer, threshold, side="left") / layer.size for layer in layers])

    return sparsities


def _erk(shapes: list[tuple[int, ...]]) -> Allocator:
    """Erdős–Rényi-Kernel (Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020, section 3,
    sparsity distribution): density ∝ sum(dims)/prod(dims) of each weight's shape; the densest layer is capped
    at 1 and the scale recomputed for the rest until no layer exceeds 1. The allocator maps the overall
    sparsity (a fraction) to each layer's, in ``shapes`` order."""
    sizes = np.array([np.prod(shape) for shape in shapes], dtype=float)
    raw = np.array([sum(shape) for shape in shapes], dtype=float) / sizes
    order = np.argsort(-raw, kind="stable")

    def sparsities(parameter: float) -> npt.NDArray[np.float64]:
        kept = (1.0 - parameter) * sizes.sum()
        dense = np.zeros(len(shapes), dtype=bool)
        for index in order:
            scale = (kept - sizes[dense].sum()) / (raw[~dense] * sizes[~dense]).sum()
            if raw[index] * scale <= 1.0:
                return 1.0 - np.where(dense, 1.0, raw * scale)
            dense[index] = True
        return np.zeros(len(shapes))

    return sparsities


@dataclass(kw_only=True)
class BaselinePlan:
    """A baseline allocation at one parameter and its predicted latency on the profile."""

    method: str
    parameter: float
    sparsities: dict[str, float]  # every profile layer; 0.0 = dense (unselected layers are always dense)
    predicted_ms: float
    dense_ms: float

    @property
    def predicted_speedup(self) -> float:
        return self.dense_ms / self.predicted_ms


class _Baseline:
    """One baseline over the selected layers of a profile: its plan at any parameter."""

    def __init__(self, method: str, profile: Profile, selected: list[str],
                 weights: Mapping[str, torch.Tensor]) -> None:
        self.method = method
        self.selected = selected
        self.layer_names = profile.layer_names
        self.allocation = _allocation(method, _selected_weights(profile, selected, weights))
        self.latency = _Latency.of(profile)
        self.dense_ms = profile.dense_ms
        self.top = profile.grid[-1]

    def plan(self, parameter: float) -> BaselinePlan:
        sparsities = {name: 0.0 for name in self.layer_names}
        clipped = np.clip(self.allocation(parameter), 0.0, self.top)  # no layer beyond the measured grid
        sparsities.update((name, float(s)) for name, s in zip(self.selected, clipped, strict=True))
        return BaselinePlan(method=self.method, parameter=parameter, sparsities=sparsities,
                            predicted_ms=self.latency.ms(sparsities), dense_ms=self.dense_ms)

    def scan(self) -> list[BaselinePlan]:
        """Plans at ``SCAN_POINTS`` + 1 evenly spaced parameters from 0 (dense) to 1."""
        return [self.plan(i / SCAN_POINTS) for i in range(SCAN_POINTS + 1)]


def fastest_baseline(method: str, profile: Profile, selected: list[str],
                     weights: Mapping[str, torch.Tensor]) -> BaselinePlan:
    """The plan of ``method`` with the lowest predicted latency among ``SCAN_POINTS`` + 1 evenly spaced
    parameters from 0 to 1, every layer clipped to the grid's top sparsity."""
    return min(_Baseline(method, profile, selected, weights).scan(), key=lambda plan: plan.predicted_ms)


def tune_baseline(method: str, profile: Profile, selected: list[str], weights: Mapping[str, torch.Tensor],
                  target_ms: float, tolerance: float = TUNE_TOLERANCE) -> BaselinePlan:
    """The ``method`` allocation over ``selected`` whose predicted latency is within ``tolerance``
    (relative) of ``target_ms``.

    The parameter ranges from 0 to 1; a layer the method would prune beyond the grid's top sparsity is
    clipped to it (no timing exists beyond it; at 1 every layer is at the top). Measured latencies need
    not fall with sparsity (a sparse kernel can be slower than the
    dense one), so the range is scanned first: a target below the fastest scanned plan is a SpdyError,
    otherwise the first scanned interval that crosses the target is bisected (the smallest parameter that
    reaches it, to scan resolution). Latency is continuous in the parameter for uniform and ERK; for
    global magnitude and LAMP it moves in steps of one weight, far finer than the tolerance on real
    models. On a tiny model where a step jumps over the tolerance band, the closest plan found in
    ``MAX_ITERATIONS`` bisection steps is returned: check its ``predicted_ms``.
    """
    dense_ms = profile.dense_ms
    if target_ms >= dense_ms:
        raise SpdyError(f"{method}: target {target_ms:.4g} ms is not below the dense {dense_ms:.4g} ms: "
                        f"nothing to prune")
    if not target_ms > 0.0 or not tolerance > 0.0:
        raise SpdyError(f"target_ms and tolerance must be positive, got {target_ms} and {tolerance}")
    baseline = _Baseline(method, profile, selected, weights)
    plans = baseline.scan()
    fastest = min(plans, key=lambda plan: plan.predicted_ms)
    if fastest.predicted_ms > target_ms * (1.0 + tolerance):
        raise SpdyError(
            f"{method} cannot reach {dense_ms / target_ms:.3f}x ({target_ms:.4g} ms): the best reachable "
            f"predicted speedup is {fastest.predicted_speedup:.3f}x (at parameter {fastest.parameter:.4f}, "
            f"with no layer above the grid's top sparsity {profile.grid[-1]})"
        )
    first = next(i for i, plan in enumerate(plans) if plan.predicted_ms <= target_ms * (1.0 + tolerance))
    return _bisect(baseline.plan, plans[max(first - 1, 0)].parameter, plans[first], target_ms, tolerance)


def _selected_weights(profile: Profile, selected: list[str], weights: Mapping[str, torch.Tensor]
                      ) -> dict[str, torch.Tensor]:
    """The weights of ``selected``, checked against the profile's layers and shapes."""
    shapes = {layer.name: layer.shape for layer in profile.layers}
    if not selected:
        raise SpdyError("no layer is selected")
    for name in selected:
        if name not in shapes:
            raise SpdyError(f"layer {name} is not in the profile")
        if name not in weights:
            raise SpdyError(f"no weight given for layer {name}")
        if shapes[name] and list(weights[name].shape) != list(shapes[name]):
            raise SpdyError(f"weight {name} has shape {list(weights[name].shape)}, the profile {shapes[name]}")
    return {name: weights[name] for name in selected}


def _bisect(plan_at: Callable[[float], BaselinePlan], low: float, reached: BaselinePlan, target_ms: float,
            tolerance: float) -> BaselinePlan:
    """Bisect between ``low`` (slower than the target) and ``reached`` (within tolerance of it or faster)
    until a plan is within ``tolerance`` of ``target_ms``; the closest plan seen if none is within it."""

    def miss(plan: BaselinePlan) -> float:
        return abs(plan.predicted_ms - target_ms) / target_ms

    high, closest = reached.parameter, reached
    for _ in range(MAX_ITERATIONS):
        if miss(closest) <= tolerance:
            break
        plan = plan_at((low + high) / 2)
        if plan.predicted_ms > target_ms:
            low = plan.parameter
        else:
            high = plan.parameter
        closest = min(closest, plan, key=miss)
    return closest
