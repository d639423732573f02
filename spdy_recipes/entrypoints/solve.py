"""``solve``: SPDY's DP on a stored profile, printed layer by layer."""

from __future__ import annotations

from pathlib import Path

from ..solve.settings import SolveSettings


def solve_stored(profile_path: Path, speedup: float, settings: SolveSettings) -> str:
    """The per-layer plan for ``speedup`` on the profile at ``profile_path`` (``report.plan_report``). Raises
    SpdyError on an unreadable profile or an infeasible target."""
    from ..profile import load_profile
    from ..report import plan_report
    from ..solve.settings import solve

    profile = load_profile(profile_path)
    return plan_report(solve(profile, speedup, settings), profile)
