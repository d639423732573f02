"""``verify``: measure a recipe's plan (or weights trained with it) here; with ``fix``, re-solve and rewrite
the recipe until its measurement meets the target without overshooting it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpdyError, warn
from ..profile.store import ProfileRequest
from ..solve.planner import DEFAULT_QUANTILE
from ..solve.settings import SolveSettings
from ..verify import SpeedupMeasurement, Verified
from .common import Log, ModelRequest, VerifySettings, plain_solver, warn_if_other_machine

SPARSITY_MATCH = 1e-4  # a re-solved plan is the recipe's own when every layer's sparsity is this close


@dataclass(kw_only=True, frozen=True)
class VerifyRequest:
    """A recipe to check: the model it is for (batch size None: the recipe's), the profile to re-solve on
    with ``fix`` (``profile.cores`` None: the recipe's), weights trained with it (``trained``)."""

    recipe: Path
    model: ModelRequest
    profile: ProfileRequest
    verify: VerifySettings = VerifySettings()
    fix: bool = False
    trained: str | None = None
    report: Path | None = None  # write the HTML report of this measurement, with in-context layer times

    def check(self) -> None:
        self.verify.check()
        if self.trained is not None and not self.trained.strip():
            raise SpdyError("--trained needs a weights file or folder")
        if self.trained and self.fix:
            raise SpdyError("--fix re-solves the recipe; it cannot be combined with --trained weights")
        if self.report:
            from .report import ReportRequest

            ReportRequest(recipe=self.recipe, output=self.report, force=True).check()


@dataclass(kw_only=True, frozen=True)
class VerifyOutcome:
    """The first measurement, whether it met the target, and the verification that fixed the recipe."""

    target: float
    predicted: float
    measurement: SpeedupMeasurement
    ok: bool
    batch_size: int
    cores: int
    fixed: Verified | None = None
    report: Path | None = None

    def closing(self, recipe: str | Path) -> str:
        """What the command says after the measurement: the fix that rewrote ``recipe``, the report written
        (empty when neither)."""
        lines = []
        if self.fixed:
            final = self.fixed.final
            lines.append(f"fixed {recipe}: solved for {final.plan.solve_speedup:.3f}x, measured "
                         f"{final.measurement.describe()} (target {self.target:.3f}x)")
        if self.report:
            lines.append(f"wrote {self.report}")
        return "\n".join(lines)

    def summary(self, recipe: Path) -> str:
        m = self.measurement
        return (f"{recipe}: target {self.target:.3f}x, predicted {self.predicted:.3f}x, measured {m.describe()} "
                f"(dense {m.dense_ms:.2f} ms, pruned {m.pruned_ms:.2f} ms, batch {self.batch_size}, {self.cores} "
                f"cores{m.load_note()}): {'OK' if self.ok else 'SHORT'}")


def warn_if_other_setting(metadata: dict, bundle, cores: int) -> None:
    """Warn when verify measures at another batch size, core count or input shape than the recipe was solved
    for: sparse speedups change with all three, so the measurement does not test the recipe's promise."""
    given = {"batch size": bundle.batch_size, "cores": cores,
             "input shape": {name: list(t.shape[1:]) for name, t in bundle.inputs.items()}}
    recorded = {"batch size": metadata.get("batch_size"), "cores": metadata.get("cores"),
                "input shape": metadata.get("input_shapes")}
    for what, value in given.items():
        if recorded[what] is not None and recorded[what] != value:
            warn(f"measuring at {what} {_setting(value)}, but the recipe was solved for {what} "
                 f"{_setting(recorded[what])}: the speedup differs between them")


def _setting(value) -> str:
    if isinstance(value, dict):
        return " ".join(f"{name} {','.join(map(str, shape))}" for name, shape in value.items())
    return str(value)


def recorded_solve_settings(metadata: dict) -> SolveSettings:
    """The solver settings a recipe's metadata records."""
    return SolveSettings(include=tuple(metadata.get("include") or ()), exclude=tuple(metadata.get("exclude") or ()),
                         sensitivity=metadata.get("sensitivity"),
                         quantile=float(metadata.get("quantile", DEFAULT_QUANTILE)),
                         coefficients=tuple(float(c) for c in metadata.get("coefficients") or ()))


def verify_recipe(request: VerifyRequest, log: Log, echo: Log | None = None) -> VerifyOutcome:
    """Prune the model one-shot to the recipe's sparsities (or load ``trained`` weights, checking their
    sparsity) and time it against dense here. With ``fix`` and a shortfall or an overshoot beyond
    ``verify.loop.OVERSHOOT``, bracket the solve speedup on the profile (``verify.meet_target``) and rewrite
    the recipe with the least-pruned plan that measures up. Raises SpdyError on a stale or unusable recipe,
    ShortOfTarget (without ``fix``: SpdyError) when short. The first measurement goes to ``echo`` (default
    ``log``), the loop's progress to ``log``. With ``report``, the measured (or fixed) plan is analysed once more
    for its layers' in-context times and the HTML report of the recipe with this measurement is written
    (its profile: the ``--hw`` path, else the one the recipe names)."""
    from dataclasses import replace

    from ..deployment import Deployment
    from ..emit import read_recipe
    from ..emit.write import render_checked_recipe, write_recipe
    from ..models import prunable_layers
    from ..models.fingerprint import graph_hash
    from ..profile.backends import get_backend
    from ..profile.store import check_cores, obtain_profile
    from ..solve.settings import solve, uniform_solver
    from ..verify import SPARSITY_TOLERANCE, PlanTimer, check_trained_sparsity, load_trained, meet_target, meets
    from ..verify.loop import overshoots

    request.check()
    recipe = read_recipe(str(request.recipe))
    metadata = recipe.metadata
    if any(value is None for value in recipe.targets.values()):
        raise SpdyError("a constant-pruning recipe holds existing zeros and sets no sparsity; nothing to verify")
    targets = {name: float(value) for name, value in recipe.targets.items() if value is not None}
    target = float(metadata.get("target_speedup") or 0)
    if target <= 1:
        raise SpdyError(f"recipe {request.recipe} records no target_speedup in its metadata")
    model = request.model
    recorded_shapes = metadata.get("input_shapes") or None
    shape = model.input_shape or (",".join(map(str, next(iter(recorded_shapes.values())))) if recorded_shapes else None)
    batch_size = model.batch_size if model.batch_size is not None else int(metadata.get("batch_size", 16))
    num_classes = model.num_classes if model.num_classes is not None else metadata.get("num_classes")
    bundle = replace(model, batch_size=batch_size, input_shape=shape, num_classes=num_classes).load()
    if metadata.get("model_graph_hash") != graph_hash(bundle, recorded_shapes):
        raise SpdyError(f"recipe {request.recipe} was made for another model graph than {model.spec} (stale); "
                        f"generate it again")
    deployment = Deployment(str(metadata.get("precision", "fp32")), metadata.get("mask_type")).resolved()
    baseline = str(metadata.get("baseline", deployment.precision))
    wanted = replace(request.profile, timing=replace(request.profile.timing, deployment=deployment), baseline=baseline)
    backend = get_backend(request.profile.backend)
    recorded_cores = int(metadata.get("cores") or backend.max_cores())
    cores = check_cores(request.profile.cores if request.profile.cores is not None else recorded_cores,
                        backend.max_cores())
    warn_if_other_setting(metadata, bundle, cores)
    elsewhere = warn_if_other_machine(metadata, metadata.get("engine"), backend, f"recipe {request.recipe}")
    trained = None
    if request.trained:
        trained = load_trained(bundle, request.trained,
                               str(request.recipe) if deployment.precision == "int8" else None)
        check_trained_sparsity(trained, targets)
        (echo or log)(f"{request.trained}: all {len(recipe.targets)} recipe layers at their target sparsity "
                      f"(within {SPARSITY_TOLERANCE:.1%})")
    profile = profile_path = None
    report_path = report_profile(request, metadata) if request.report and not request.fix else None
    settings = recorded_solve_settings(metadata)
    points: tuple = ()  # the plans verification measured before the recipe's plan was solved
    if request.fix:  # before any timing, so that a missing profile, bad metadata or an unreachable target fail fast
        profile, profile_path = obtain_profile(bundle, replace(wanted, cores=cores))
        points = tuple(profile.recorded_points(metadata.get("verify_points")))
        solve(profile.refitted(points), target, settings)
    tolerance = request.verify.tolerance
    with PlanTimer(bundle, backend, cores, request.verify.rounds, deployment, baseline) as timer:
        measurement = (timer.measure_model(trained) if trained
                       else timer.measure(targets))
        ok = meets(measurement, target, tolerance)
        outcome = VerifyOutcome(target=target, predicted=float(metadata.get("predicted_speedup") or 0),
                                measurement=measurement, ok=ok, batch_size=bundle.batch_size, cores=cores)
        (echo or log)(outcome.summary(request.recipe))
        if not request.fix or (ok and not overshoots(measurement, target)):
            page = _report(request, timer, None if trained else targets, measurement,
                           profile_path or report_path, elsewhere, log)
            outcome = replace(outcome, report=page)
        if not request.fix:
            if not ok:
                raise SpdyError(f"measured {measurement.describe()}: the 95% interval's lower end is below the target "
                                f"{target:.3f}x"
                                + (f" x (1 - {tolerance})" if tolerance else "") + "; use --fix to re-solve"
                                + (f" (report: {outcome.report})" if outcome.report else ""))
            return outcome
        if ok and not overshoots(measurement, target):
            return outcome
        assert profile is not None and profile_path is not None  # obtained above whenever fix is asked for
        first = solve(profile.refitted(points), target, settings, float(metadata.get("solve_speedup") or target))
        same = first.pruned.keys() == targets.keys() and all(
            abs(first.pruned[name] - s) < SPARSITY_MATCH for name, s in targets.items())
        verified = meet_target(plain_solver(target, settings), timer, target, tolerance, request.verify.max_rounds,
                               log, profile, first, measurement if same else None, uniform_solver(target, settings),
                               points)
        final = verified.final
        layer_ms = timer.layer_times(final.plan.pruned) if request.report else None
    model_layers = {layer.name for layer in prunable_layers(bundle.module)}
    text = render_checked_recipe(final.plan, profile, profile_path, recipe.settings, settings, model_layers,
                                 final.measurement.record(layer_ms), metadata.get("search"), final.points)
    write_recipe(request.recipe, text)
    page = None
    if request.report:
        from .report import ReportRequest, report

        page = report(ReportRequest(recipe=request.recipe, output=request.report, profile=profile_path, force=True,
                                    notes=elsewhere, loaded=profile), checked=True)
    return replace(outcome, fixed=verified, report=page)


def _report(request: VerifyRequest, timer, targets: dict[str, float] | None, measurement, profile_path: Path | None,
            notes: tuple[str, ...], log: Log) -> Path | None:
    """The report of the recipe with this measurement (and, for a one-shot plan, its in-context layer times)."""
    if not request.report:
        return None
    from .report import ReportRequest, report

    layer_ms = None
    if targets is not None:
        log("[report] analysing the recipe's layers in context")
        layer_ms = timer.layer_times(targets)
    record = measurement.record(layer_ms)
    return report(ReportRequest(recipe=request.recipe, output=request.report, profile=profile_path,
                                hw_root=request.profile.hw_root, force=True, measured=record, notes=notes),
                  checked=True)  # VerifyRequest.check ran it before any timing


def report_profile(request: VerifyRequest, metadata: dict) -> Path:
    """The profile the report of ``request`` shows the recipe against: the ``--hw`` path, else the one the
    recipe names (``report.view.find_profile``); SpdyError before any timing when there is none."""
    from ..profile.store import is_path
    from ..report.view import find_profile

    if is_path(request.profile.hw):
        return Path(request.profile.hw)
    return find_profile(metadata, request.profile.hw_root, "--hw PATH")
