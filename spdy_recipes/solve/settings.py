"""What the solver is told besides the speedup (``SolveSettings``), the error table it minimises, and the
solves every flow runs: ``solve`` (SPDY's DP plan), ``uniform_solver`` and ``best_reachable``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import SpdyError
from ..models import select_names
from ..profile import Profile
from ..sensitivity import load_sensitivity, prior_errors
from .planner import DEFAULT_QUANTILE, Plan, fastest_speedup, plan_profile, uniform_plan


@dataclass(kw_only=True, frozen=True)
class SolveSettings:
    """What the solver is told besides the speedup: which layers, which errors, how conservative."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sensitivity: str | None = None
    quantile: float = DEFAULT_QUANTILE
    coefficients: tuple[float, ...] = ()  # SPDY search result: one per selected layer, scaling the prior

    def check(self, speedup: float) -> None:
        """Raises SpdyError, before any work, on a target speedup that is not a finite number above 1 or a
        quantile outside [0, 1] (the checks ``plan_profile`` makes, made up front)."""
        if not (math.isfinite(speedup) and speedup > 1.0):
            raise SpdyError(f"--speedup must be greater than 1, got {speedup}")
        if not 0.0 <= self.quantile <= 1.0:
            raise SpdyError(f"--quantile must be between 0 and 1, got {self.quantile}")

    def selected(self, profile: Profile) -> list[str]:
        """The profile's layers the solver may prune (``include``/``exclude`` regexes, ``models.select_names``),
        in profile order. Raises SpdyError on a bad regex or when none is left."""
        return select_names(profile.layer_names, self.include, self.exclude)


def error_table(profile: Profile, selected: list[str], settings: SolveSettings) -> npt.NDArray[np.float64]:
    """Measured errors from a sensitivity table, or SPDY's prior scaled by searched coefficients."""
    if settings.sensitivity:
        return load_sensitivity(settings.sensitivity, selected, profile.grid)
    if settings.coefficients and len(settings.coefficients) != len(selected):
        raise SpdyError(f"{len(settings.coefficients)} searched coefficients for {len(selected)} selected layers")
    return prior_errors(len(selected), len(profile.grid), settings.coefficients or None)


def solve(profile: Profile, speedup: float, settings: SolveSettings = SolveSettings(),
          solve_speedup: float | None = None) -> Plan:
    """Pick per-layer levels for ``speedup`` (solved for ``solve_speedup`` when verification moved it)
    over the selected layers of ``profile``."""
    selected = settings.selected(profile)
    errors = error_table(profile, selected, settings)
    return plan_profile(profile, speedup, selected, errors, settings.quantile, solve_speedup)


def uniform_solver(speedup: float,
                   settings: SolveSettings = SolveSettings()) -> Callable[[Profile, float | None], Plan]:
    """``solver(profile, solve_speedup)`` over uniform plans (every selected layer at one level,
    ``solve.planner.uniform_plan``): what verification brackets when the DP's plans fall short here."""
    def solver(profile: Profile, solve_speedup: float | None = None) -> Plan:
        selected = settings.selected(profile)
        errors = error_table(profile, selected, settings)
        return uniform_plan(profile, speedup, selected, errors, settings.quantile, solve_speedup)

    return solver


def best_reachable(profile: Profile, settings: SolveSettings = SolveSettings()) -> float:
    """The fastest speedup the profile allows: every fusion unit of the selected layers at its fastest
    level, on the ``settings.quantile`` of the repeats, against the median dense latency (below 1.0 when no sparse
    level is faster than dense on this machine)."""
    selected = settings.selected(profile)
    return fastest_speedup(profile, selected, settings.quantile)
