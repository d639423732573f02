"""``compare``: SPDY against uniform, global magnitude, LAMP and ERK at one speed, in one or more regimes."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cluster import ClusterSettings, open_cluster
from ..cluster.profile import obtain_profile_on
from ..errors import SpdyError
from ..evaluate import MethodResult, OneShot, evaluate_allocations, format_results, matched_allocations
from ..profile.store import ProfileRequest
from ..solve.baselines import BASELINES
from ..solve.settings import SolveSettings
from .common import Log, ModelRequest, SearchRequest, searched_solver

if TYPE_CHECKING:
    from ..sensitivity.setup import AccuracySetup
    from ..solve.search import SearchState

MATCHES = ("predicted", "measured")


@dataclass(kw_only=True, frozen=True)
class CompareRequest:
    """Everything ``compare`` needs. ``match``: "predicted" (baselines at SPDY's predicted latency) or
    "measured" (every method re-aimed until the engine measures it within 1% of ``speedup``).
    ``refit_steps``: one regime per entry, 0 for one-shot with the layer-wise re-fit, N > 0 for N Adam
    steps of SPDY's global re-fit after it; all regimes evaluate the same allocations. ``rounds``: timing
    rounds per measurement (0: predicted only)."""

    model: ModelRequest
    profile: ProfileRequest
    speedup: float
    search: SearchRequest
    solve: SolveSettings = SolveSettings()
    rounds: int = 10
    match: str = "predicted"
    refit_steps: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = BASELINES
    cluster: ClusterSettings = ClusterSettings()  # Ray: the database and the search on its workers

    def check(self) -> None:
        """Raises SpdyError on a bad request, before any work."""
        self.solve.check(self.speedup)
        if self.match not in MATCHES:
            raise SpdyError(f"match must be one of {', '.join(MATCHES)}, got {self.match!r}")
        if self.rounds < 0 or not self.refit_steps or any(steps < 0 for steps in self.refit_steps):
            raise SpdyError("--rounds and --global-refit must be at least 0")
        if self.search.calibration.holdout < 1:
            raise SpdyError("--holdout must be at least 1 (compare evaluates on held-out data)")
        if self.match == "measured" and not self.rounds:
            raise SpdyError("--match measured needs timing rounds (--rounds > 0)")
        self.cluster.check()
        from ..sensitivity.setup import check_heldout_source

        check_heldout_source(self.search.calibration.source, self.search.calibration.heldout_source)


@dataclass
class Comparison:
    """Per regime (global re-fit steps), dense then every method's results; ``setup`` names the losses."""

    regimes: dict[int, list[MethodResult]]
    setup: AccuracySetup
    search_states: list[SearchState]  # SPDY's searches (prior alone: curve[0][1]; best: best_loss)
    int8: bool = False  # every row scored in its fake-quantized INT8 form against dense fp32

    def table(self) -> str:
        """Each regime's ``format_results`` under a heading naming it."""
        parts = []
        for steps, results in self.regimes.items():
            name = "one-shot, layer-wise re-fit" if steps == 0 else f"layer-wise + global re-fit ({steps} steps)"
            if self.int8:
                name += "; every row, dense included, scored quantized to INT8 against dense fp32"
            parts.append(f"[{name}]\n{format_results(results, self.setup)}")
        return "\n\n".join(parts)


def compare(request: CompareRequest, log: Log) -> Comparison:
    """Profile (cached), calibration, database and search; then every method at the same speed
    (``evaluate.matched_allocations``), evaluated in each regime (``evaluate.evaluate_allocations``).
    Raises SpdyError on bad input, an infeasible target or a method that never measures fast enough."""
    from ..profile.backends import get_backend
    from ..verify import PlanTimer

    request.check()
    bundle = request.model.load()
    with open_cluster(request.cluster, log) as cluster:
        profile, _ = obtain_profile_on(cluster, request.model, bundle, request.profile, log)
        solver, _ = searched_solver(bundle, profile, request.speedup, request.solve, request.search, log, cluster)
        timing = PlanTimer(bundle, get_backend(request.profile.backend), profile.cores, request.rounds,
                           profile.deployment, profile.baseline) \
            if request.rounds else nullcontext()
        with timing as timer:
            allocations = matched_allocations(solver, timer, request.match, log, request.methods)
    oneshot = OneShot(solver.setup)
    int8 = profile.deployment.resolved().precision == "int8"  # each model scored as its INT8 export computes
    regimes = {steps: evaluate_allocations(solver.setup, allocations, request.methods, steps, log, oneshot, int8)
               for steps in request.refit_steps}
    return Comparison(regimes, solver.setup, list(solver.history), int8)
