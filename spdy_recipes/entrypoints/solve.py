"""``solve``: SPDY's DP on a stored profile, printed layer by layer."""

from __future__ import annotations

from pathlib import Path

from ..solve.settings import SolveSettings


def solve_stored(profile_path: Path, speedup: float, settings: SolveSettings) -> str:
    """The per-layer plan for ``speedup`` on the profile at ``profile_path`` (``report.plan_report``). Raises
    SpdyError on an unreadable profile, an INT8 one without the calibration that times dense fp32 (``speedup``
    is over dense fp32), or an infeasible target."""
    from ..profile import load_profile
    from ..report import plan_report
    from ..solve.settings import solve

    profile = load_profile(profile_path).with_baseline("fp32")  # an INT8 profile's target is over dense fp32
    return plan_report(solve(profile, speedup, settings), profile)
