"""From a profile, a target speedup and error estimates to per-layer sparsities with a hard latency bound."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import SpdyError
from ..profile import Profile
from .dp import DEFAULT_BUCKETS, solve_min_error

DEFAULT_QUANTILE = 0.9

DENSE = 0  # the grid level of a dense layer (every grid starts at sparsity 0)
BUDGET_ROUNDING = 1e-12  # relative slack of the budget check: float sums of the same times


@dataclass(kw_only=True)
class Plan:
    """The solved profile: a grid level per selected layer, its bound and its predicted latency.

    ``bound_ms`` sums the conservative (``quantile`` over repeats) times and never exceeds
    ``dense_ms / solve_speedup``; ``predicted_ms`` sums the median times, the profile's estimate of what the
    engine will measure. ``solve_speedup`` differs from ``target_speedup`` when verification moved it.
    """

    target_speedup: float
    solve_speedup: float
    quantile: float
    dense_ms: float
    budget_ms: float
    bound_ms: float
    predicted_ms: float
    max_speedup: float
    sparsities: dict[str, float]  # every profile layer; 0.0 = dense (unselected layers are always dense)
    levels: dict[str, int]  # every profile layer's grid level
    times_ms: dict[str, float]  # median time of every layer at its chosen level
    total_error: float

    @property
    def predicted_speedup(self) -> float:
        return self.dense_ms / self.predicted_ms

    @property
    def guaranteed_speedup(self) -> float:
        """The speedup the conservative times guarantee on the profile."""
        return self.dense_ms / self.bound_ms

    @property
    def pruned(self) -> dict[str, float]:
        """The layers the recipe prunes, with their sparsity."""
        return {name: s for name, s in self.sparsities.items() if s > 0}


def fusion_units(profile: Profile, selected: list[str]) -> list[list[int]]:
    """Indices into ``selected`` of each fusion block's selected layers (``Profile.blocks``), in model
    order: the planner keeps the layers of one unit at one level, the only combinations whose time the
    profile measured inside a fused engine operation."""
    index = {name: i for i, name in enumerate(selected)}
    units = [[index[name] for name in block if name in index] for block in profile.blocks()]
    return [unit for unit in units if unit]


def fastest_speedup(profile: Profile, selected: list[str], quantile: float = DEFAULT_QUANTILE) -> float:
    """Dense median latency over the fastest plan's ``quantile`` latency: every fusion unit of the
    ``selected`` layers at its fastest level, every other layer dense, plus the fixed time."""
    chosen = set(selected)
    rows = {layer.name: layer.times(quantile) for layer in profile.layers}
    fastest_ms = profile.fixed(quantile) + sum(rows[name][0] for name in rows if name not in chosen)
    planning = np.array([rows[name] for name in selected])
    fastest_ms += sum(float(planning[unit].sum(axis=0).min()) for unit in fusion_units(profile, selected))
    return profile.dense_ms / fastest_ms


def plan_profile(
    profile: Profile,
    speedup: float,
    selected: list[str],
    errors: npt.NDArray[np.float64],
    quantile: float = DEFAULT_QUANTILE,
    solve_speedup: float | None = None,
    buckets: int = DEFAULT_BUCKETS,
) -> Plan:
    """Solve the SPDY DP for ``speedup`` (or for ``solve_speedup`` when verification moved it: above the
    target after a measured shortfall, below it after an overshoot) over the ``selected`` layers.

    All other layers stay dense. Everything is charged to the budget: the fixed (non-layer) time, the
    per-call overhead and the dense time of layers that are not selected, each at its ``quantile`` over
    repeats, against the median dense latency. ``errors`` is (selected layers x grid levels).
    The DP is SPDY's (Frantar & Alistarh 2022, Algorithm 1) over bucketed latencies, with one option per
    level for every fusion unit (``fusion_units``: layers one engine operation fuses share a level, their
    times and errors summed); raises SpdyError when the speedup is not above 1 or beyond the profile's reach.
    """
    if not speedup > 1.0:
        raise SpdyError(f"--speedup must be greater than 1, got {speedup}")
    if not 0.0 <= quantile <= 1.0:
        raise SpdyError(f"--quantile must be between 0 and 1, got {quantile}")
    solve_speedup = solve_speedup or speedup
    if not solve_speedup > 0.0:
        raise SpdyError(f"the solve speedup must be positive, got {solve_speedup}")
    by_name = {layer.name: layer for layer in profile.layers}
    unknown = [name for name in selected if name not in by_name]
    if unknown:
        raise SpdyError(f"layer(s) {', '.join(unknown[:5])} are not in the profile")
    chosen = set(selected)
    planning_ms = {layer.name: layer.times(quantile) for layer in profile.layers}  # ms per level, on the quantile
    median_ms = {layer.name: layer.times_ms for layer in profile.layers}  # ms per level, median of the repeats
    planning = np.array([planning_ms[name] for name in selected])
    median = np.array([median_ms[name] for name in selected])
    if errors.shape != planning.shape:
        raise SpdyError(f"error table shape {errors.shape} does not match {planning.shape} (layers x levels)")

    dense_ms = profile.dense_ms
    unselected = [layer for layer in profile.layers if layer.name not in chosen]
    fixed_bound = profile.fixed(quantile) + sum(planning_ms[layer.name][DENSE] for layer in unselected)
    fixed_median = profile.fixed_ms + sum(median_ms[layer.name][DENSE] for layer in unselected)
    target_ms = dense_ms / solve_speedup
    budget_ms = target_ms - fixed_bound
    units = fusion_units(profile, selected)
    unit_times = np.array([planning[unit].sum(axis=0) for unit in units])
    unit_errors = np.array([errors[unit].sum(axis=0) for unit in units])
    fastest_ms = fixed_bound + float(unit_times.min(axis=1).sum())
    max_speedup = dense_ms / fastest_ms
    if fastest_ms > target_ms:
        asked = f"speedup {speedup:.3f}x" + (f" (solved as {solve_speedup:.3f}x)" if solve_speedup != speedup else "")
        raise SpdyError(
            f"{asked} is infeasible on this profile: the best reachable is {max_speedup:.3f}x "
            f"(every fusion unit of the selected layers at its fastest level, {quantile:.2f} quantile of the "
            f"measured times)"
            + _support_note(profile)
        )
    unit_picks = solve_min_error(unit_times, unit_errors, budget_ms, buckets)
    if unit_picks is None:  # only possible within rounding of the fastest profile, which fits exactly
        unit_picks = [int(k) for k in unit_times.argmin(axis=1)]
    picks = [0] * len(selected)
    for unit, level in zip(units, unit_picks, strict=True):
        for i in unit:
            picks[i] = int(level)
    indices = range(len(selected))
    bound_ms = fixed_bound + float(sum(planning[i, k] for i, k in zip(indices, picks, strict=True)))
    if bound_ms > target_ms * (1 + BUDGET_ROUNDING):
        raise AssertionError(f"solver broke the budget: {bound_ms} > {target_ms}")
    sparsities = {layer.name: 0.0 for layer in profile.layers}
    levels = {layer.name: 0 for layer in profile.layers}
    times_ms = {layer.name: median_ms[layer.name][DENSE] for layer in profile.layers}
    for i, (name, level) in enumerate(zip(selected, picks, strict=True)):
        sparsities[name] = profile.grid[level]
        levels[name] = int(level)
        times_ms[name] = float(median[i, level])
    predicted_ms = fixed_median + sum(times_ms[name] for name in selected)
    total_error = float(sum(errors[i, k] for i, k in zip(indices, picks, strict=True)))
    return Plan(target_speedup=speedup, solve_speedup=solve_speedup, quantile=quantile, dense_ms=dense_ms,
                budget_ms=budget_ms, bound_ms=bound_ms, predicted_ms=predicted_ms, max_speedup=max_speedup,
                sparsities=sparsities, levels=levels, times_ms=times_ms, total_error=total_error)


def uniform_plan(profile: Profile, speedup: float, selected: list[str], errors: npt.NDArray[np.float64],
                 quantile: float = DEFAULT_QUANTILE, solve_speedup: float | None = None) -> Plan:
    """Every ``selected`` layer at one grid level, the others dense: the least sparse level whose
    conservative (``quantile``) uniform time reaches ``solve_speedup`` (default ``speedup``) and beats dense, or with
    ``solve_speedup`` beyond every level, the level whose uniform run is fastest: the plans DeepSparse
    runs most like the profile's own uniform runs, verification's fallback. ``errors`` is (selected layers x grid
    levels); raises SpdyError when no sparse level is faster than dense."""
    chosen = set(selected)
    planning = {layer.name: layer.times(quantile) for layer in profile.layers}
    median = {layer.name: layer.times_ms for layer in profile.layers}

    def total(times: dict[str, list[float]], level: int) -> float:
        return sum(times[name][level if name in chosen else 0] for name in times)

    bounds = {k: profile.fixed(quantile) + total(planning, k) for k in range(1, len(profile.grid))}
    wanted_ms = profile.dense_ms / (solve_speedup or speedup)
    reaching = [k for k, ms in bounds.items() if ms <= wanted_ms and ms < profile.dense_ms]
    level = min(reaching) if reaching else min(bounds, key=bounds.__getitem__)
    if bounds[level] >= profile.dense_ms:
        raise SpdyError("no uniform sparsity level is faster than dense on this profile")
    predicted_ms = profile.fixed_ms + total(median, level)
    levels = {layer.name: (level if layer.name in chosen else 0) for layer in profile.layers}
    return Plan(target_speedup=speedup, solve_speedup=profile.dense_ms / bounds[level], quantile=quantile,
                dense_ms=profile.dense_ms, budget_ms=wanted_ms, bound_ms=bounds[level],
                predicted_ms=predicted_ms, max_speedup=fastest_speedup(profile, selected, quantile),
                sparsities={name: profile.grid[k] for name, k in levels.items()}, levels=levels,
                times_ms={name: median[name][k] for name, k in levels.items()},
                total_error=float(errors[:, level].sum()))


def _support_note(profile: Profile) -> str:
    """Why a profile may be flat: the engine runs part of the graph outside its optimised kernels."""
    supported = profile.engine.get("fraction_of_supported_ops")
    if supported is None or supported >= 1:
        return ""
    return (f"; {profile.engine.get('name', 'the engine')} runs {1 - supported:.0%} of the model's operations "
            "outside its optimised kernels (fraction_of_supported_ops), where pruning gains nothing")
