"""``solve``: SPDY's DP on a stored profile, printed layer by layer."""

from __future__ import annotations

from pathlib import Path

from ..solve.settings import SolveSettings


def solve_stored(profile_path: Path, speedup: float, settings: SolveSettings) -> str:
    """The per-layer plan for ``speedup`` on the profile at ``profile_path`` (``report.plan_report``). Raises
    SpdyError on an unreadable profile, one timed in INT8 or block-4 (solving for a target over dense fp32 on
    it is not built yet), or an infeasible target."""
    from ..deployment import FP32
    from ..profile import load_profile
    from ..profile.store import check_deployment
    from ..report import plan_report
    from ..solve.settings import solve

    profile = load_profile(profile_path)
    check_deployment(profile, FP32, str(profile_path))  # INT8 targets are over dense fp32: not solved yet
    return plan_report(solve(profile, speedup, settings), profile)
