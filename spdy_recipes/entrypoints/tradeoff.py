"""``tradeoff``: the speed/accuracy curve. SPDY and the baselines at several target speedups, each with
its predicted (and, with timing rounds, measured) speedup and, with calibration data, its calibration
and held-out loss after one-shot pruning; written as a table and a plot."""

from __future__ import annotations

import csv
import io
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..cluster import ClusterSettings, open_cluster
from ..errors import SpdyError
from ..profile.store import ProfileRequest
from ..solve.baselines import BASELINES
from ..solve.settings import SolveSettings
from .common import Log, ModelRequest, SearchRequest, prepare_search, warn_if_other_machine

if TYPE_CHECKING:
    from ..evaluate import MethodResult
    from ..profile import Profile
    from ..sensitivity.setup import AccuracySetup

COLUMNS = ("target", "method", "predicted_speedup", "measured_speedup", "measured_low", "measured_high",
           "sparsity", "calibration_loss", "heldout_loss", "heldout_accuracy", "note")


@dataclass(kw_only=True, frozen=True)
class TradeoffRequest:
    """Everything ``tradeoff`` needs: the targets (speedups over dense, each > 1), ``search`` (None: SPDY's
    prior and no losses), timing ``rounds`` per method and target (0: predicted only), and the folder for
    ``tradeoff.csv`` and ``tradeoff.png`` (None: the table is only returned)."""

    model: ModelRequest
    profile: ProfileRequest
    speedups: tuple[float, ...]
    search: SearchRequest | None = None
    solve: SolveSettings = SolveSettings()
    rounds: int = 0
    methods: tuple[str, ...] = BASELINES
    output: Path | None = None
    force: bool = False
    cluster: ClusterSettings = ClusterSettings()  # Ray: the database and every target's search on its workers

    def check(self) -> None:
        """Raises SpdyError on a bad request, before any work."""
        if not self.speedups or any(not s > 1.0 for s in self.speedups):
            raise SpdyError(f"--speedups must be speedups above 1, got {','.join(map(str, self.speedups)) or 'none'}")
        if self.rounds < 0:
            raise SpdyError("--rounds must be at least 0")
        if not 0.0 <= self.solve.quantile <= 1.0:
            raise SpdyError(f"--quantile must be between 0 and 1, got {self.solve.quantile}")
        unknown = [m for m in self.methods if m not in BASELINES]
        if unknown:
            raise SpdyError(f"unknown method(s) {', '.join(unknown)}; expected some of {', '.join(BASELINES)}")
        if self.output is not None:
            if self.output.exists() and not self.output.is_dir():
                raise SpdyError(f"{self.output} is a file; give a folder for the table and the plot")
            if (self.output / "tradeoff.csv").exists() and not self.force:
                raise SpdyError(f"{self.output} already holds a trade-off (use --force to replace it)")
        if self.search:
            from ..sensitivity.setup import check_heldout_source

            check_heldout_source(self.search.calibration.source, self.search.calibration.heldout_source)


@dataclass
class TradeoffPoint:
    """One target: every method's result (dense first when losses were computed), or why it is out of reach."""

    target: float
    results: list[MethodResult] = field(default_factory=list)
    unreachable: str = ""


@dataclass
class Tradeoff:
    """The curve: one point per target, in increasing order; ``setup`` None when no losses were computed."""

    points: list[TradeoffPoint]
    setup: AccuracySetup | None
    profile: Profile
    weights: dict[str, int]  # prunable weights per selected layer, to weight the overall sparsity

    def rows(self) -> list[dict]:
        """One dict per target and method (``COLUMNS``); speedups in x, sparsity as the fraction of the
        selected layers' weights pruned, losses as the scorers define them (``sensitivity.scoring``)."""
        rows = []
        for point in self.points:
            if point.unreachable:
                rows.append(_row(point.target, "spdy", note=point.unreachable))
                continue
            for r in point.results:
                if r.method == "dense" and any(row["method"] == "dense" for row in rows):
                    continue  # the same at every target: shown once, as the first row (target 1)
                if r.unreachable:
                    rows.append(_row(point.target, r.method, note=r.unreachable.split(": ", 1)[-1]))
                    continue
                m = r.measurement
                rows.append(_row(
                    1.0 if r.method == "dense" else point.target, r.method, predicted_speedup=r.predicted_speedup,
                    measured_speedup=m.speedup if m else None, measured_low=m.low if m else None,
                    measured_high=m.high if m else None, sparsity=self.overall_sparsity(r.sparsities),
                    calibration_loss=r.calibration.loss if r.calibration else None,
                    heldout_loss=r.heldout.loss if r.heldout else None,
                    heldout_accuracy=r.heldout.accuracy if r.heldout else None))
        return rows

    def overall_sparsity(self, sparsities: dict[str, float]) -> float:
        """The fraction of the selected layers' weights that ``sparsities`` prunes."""
        total = sum(self.weights.values())
        return sum(sparsities.get(name, 0.0) * n for name, n in self.weights.items()) / total

    def csv(self) -> str:
        """``rows()`` as CSV, empty cells where a value is unknown."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({key: ("" if value is None else f"{value:.6g}" if isinstance(value, float) else value)
                             for key, value in row.items()})
        return buffer.getvalue()

    def summary(self, output: Path | None) -> str:
        """``table()``, and the files written to ``output`` when one was given."""
        written = f"\nwrote {output / 'tradeoff.csv'} and {output / 'tradeoff.png'}" if output else ""
        return self.table() + written

    def table(self) -> str:
        """A fixed-width table of ``rows()`` under a line naming the losses."""
        if self.setup is None:
            head = "no losses (give --calib to score every plan on calibration data)"
        else:
            held = self.setup.heldout_scorer.kind if self.setup.heldout_scorer else "-"
            head = f"calibration loss: {self.setup.scorer.kind}; held-out loss: {held}"
        lines = [head, f"{'target':>7} {'method':<17}{'predicted':>10}{'measured (95% interval)':>26}{'sparsity':>10}"
                       f"{'calib loss':>12}{'held-out loss':>15}{'held-out acc':>14}"]
        for row in self.rows():
            if row["note"]:
                lines.append(f"{row['target']:>6.2f}x {row['method']:<17}{row['note']}")
                continue
            measured = "-" if row["measured_speedup"] is None else f"{row['measured_speedup']:.3f}x" + (
                "" if row["measured_low"] is None else f" ({row['measured_low']:.2f}-{row['measured_high']:.2f})")
            lines.append(f"{row['target']:>6.2f}x {row['method']:<17}{row['predicted_speedup']:>9.3f}x"
                         f"{measured:>26}{row['sparsity']:>10.3f}{_number(row['calibration_loss']):>12}"
                         f"{_number(row['heldout_loss']):>15}{_number(row['heldout_accuracy'], '.4f'):>14}")
        return "\n".join(lines)


def _row(target: float, method: str, **values) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update({"target": target, "method": method, "note": "", **values})
    return row


def _number(value: float | None, spec: str = ".5g") -> str:
    return "-" if value is None else format(value, spec)


def tradeoff(request: TradeoffRequest, log: Log) -> Tradeoff:
    """For each target in increasing order: SPDY's plan (searched on the calibration data with ``search``,
    else SPDY's prior) and every baseline at SPDY's predicted latency, measured here with ``rounds`` and
    evaluated one-shot on the calibration and held-out data with ``search``. The profile, database and
    searches are the cached ones (a target searched before costs nothing). A target beyond the profile's
    reach is recorded as such. Writes ``tradeoff.csv`` and ``tradeoff.png`` to ``request.output`` when
    given. Raises SpdyError on bad input, or when no target is reachable. With ``request.cluster`` (Ray) the
    database and every target's search run on its workers."""
    request.check()
    request.cluster.check()
    bundle = request.model.load()
    with open_cluster(request.cluster, log) as cluster:
        return _tradeoff(request, bundle, cluster, log)


def _tradeoff(request: TradeoffRequest, bundle, cluster, log: Log) -> Tradeoff:
    from ..cluster.profile import obtain_profile_on
    from ..models.layers import parameters_by_name
    from ..profile.backends import get_backend
    from ..progress import progress
    from ..solve.settings import best_reachable
    from ..verify import PlanTimer

    profile, _ = obtain_profile_on(cluster, request.model, bundle, request.profile, log)
    reachable = best_reachable(profile, request.solve)
    targets = sorted({round(s, 4) for s in request.speedups})  # 1.2 and 1.20000001 are one target
    if all(target > reachable for target in targets):
        raise SpdyError(f"no target is reachable on this profile: the best is {reachable:.3f}x")
    selected = request.solve.selected(profile)
    params = parameters_by_name(bundle.module)
    setup = _prepare(bundle, profile, selected, request, log, cluster) if request.search else None
    timing: AbstractContextManager[PlanTimer | None] = nullcontext()
    if request.rounds:
        backend = get_backend(request.profile.backend)
        warn_if_other_machine(profile.hardware, profile.engine_label, backend, "the profile")
        timing = PlanTimer(bundle, backend, profile.cores, request.rounds, profile.deployment, profile.baseline)
    points = []
    started = time.monotonic()
    with timing as timer, progress(len(targets), "tradeoff", log) as step:
        oneshot = None
        for target in targets:
            if target > reachable:
                points.append(TradeoffPoint(target, unreachable=f"beyond the profile's reach ({reachable:.3f}x)"))
            elif setup is None:
                points.append(TradeoffPoint(target, _predicted_only(profile, target, request, selected, params,
                                                                    timer, log)))
            else:
                results, oneshot = _with_losses(setup, profile, target, request, timer, oneshot, log)
                points.append(TradeoffPoint(target, results))
            step(f"{target:g}x")
    log(f"[tradeoff] {len(targets)} target(s) in {time.monotonic() - started:.0f} s")
    result = Tradeoff(points, setup, profile, {name: params[name].numel() for name in selected})
    if request.output is not None:
        write_tradeoff(result, request.output)
    return result


def _prepare(bundle, profile: Profile, selected: list[str], request: TradeoffRequest, log: Log,
             cluster=None) -> AccuracySetup:
    if request.search is None:
        raise SpdyError("losses need calibration data (--calib)")
    return prepare_search(bundle, profile, selected, request.search, log, cluster)


def _predicted_only(profile: Profile, target: float, request: TradeoffRequest, selected: list[str], params: dict,
                    timer, log: Log) -> list[MethodResult]:
    """SPDY's prior plan and each baseline at its predicted latency (``evaluate.at_predicted_speed``), measured
    when ``timer``; no losses."""
    from ..evaluate import Allocation, MethodResult, at_predicted_speed
    from ..solve.settings import solve

    plan = solve(profile, target, request.solve)
    spdy = Allocation(method="spdy", sparsities=plan.sparsities, predicted_speedup=plan.predicted_speedup)
    allocations = at_predicted_speed(spdy, target, profile, selected, params, timer, log, request.methods)
    return [MethodResult(method=method, sparsities={}, predicted_speedup=None, measurement=None, calibration=None,
                         heldout=None, unreachable=str(a)) if isinstance(a, SpdyError)
            else MethodResult(method=method, sparsities=a.sparsities, predicted_speedup=a.predicted_speedup,
                              measurement=a.measurement, calibration=None, heldout=None)
            for method, a in zip(("spdy", *request.methods), allocations, strict=True)]


def _with_losses(setup: AccuracySetup, profile: Profile, target: float, request: TradeoffRequest, timer, oneshot,
                 log: Log):
    """SPDY searched for ``target`` and the baselines at its predicted latency, evaluated one-shot
    (``evaluate.matched_allocations`` and ``evaluate.evaluate_allocations``). Returns (results, OneShot)."""
    from ..evaluate import OneShot, evaluate_allocations, matched_allocations
    from ..solve.objective import SearchedSolver
    from .common import search_progress

    if request.search is None:
        raise SpdyError("losses need calibration data (--calib)")
    settings = request.search.search_settings()
    solver = SearchedSolver(setup, profile, target, request.solve, settings,
                            lambda: search_progress(settings.steps, log), log)
    allocations = matched_allocations(solver, timer, "predicted", log, request.methods)
    oneshot = oneshot or OneShot(setup)
    int8 = profile.deployment.resolved().precision == "int8"  # scored as the INT8 export computes
    return evaluate_allocations(setup, allocations, request.methods, 0, log, oneshot, int8), oneshot


def write_tradeoff(result: Tradeoff, folder: Path) -> None:
    """``tradeoff.csv`` and ``tradeoff.png`` in ``folder``: both made first, then each written atomically,
    one right after the other."""
    from ..files import atomic_write_bytes, atomic_write_text
    from ..report.plots import tradeoff_plot

    setup = result.setup
    losses = None if setup is None else {
        "calibration_loss": f"calibration loss ({setup.scorer.kind})",
        "heldout_loss": f"held-out loss ({setup.heldout_scorer.kind})" if setup.heldout_scorer else ""}
    table, (png, _) = result.csv(), tradeoff_plot(result.rows(), losses)
    atomic_write_text(folder / "tradeoff.csv", table)
    atomic_write_bytes(folder / "tradeoff.png", png)
