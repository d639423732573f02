"""``generate``: profile -> errors (prior, table or search) -> plan -> verified here -> SparseML recipe."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..cluster import ClusterSettings, open_cluster
from ..emit import RecipeSettings
from ..emit.recipe import check_qat_room
from ..emit.write import check_recipe_path, render_checked_recipe, write_recipe
from ..errors import SpdyError, warn
from ..files import refuse_overwrite
from ..models.sparseml_registry import trainer_note
from ..profile import Profile
from ..profile.store import LOCAL, ProfileRequest
from ..solve import Plan
from ..solve.settings import SolveSettings
from ..verify import Verified
from .common import (
    Log,
    ModelRequest,
    SearchRequest,
    VerifySettings,
    plain_solver,
    searched_solver,
    warn_if_other_machine,
)
from .report import ReportRequest, report

# What the additive latency model's error on SPDY's own plans was, measured per kind of uncalibrated profile
# (benchmarks/latency_model.py, README "Benchmarks", on a 2-core AMD EPYC, AVX2); a profile that is not this
# machine's cannot be checked here, so its claim says this. Calibrated profiles state their own held-out error.
MODEL_ERROR_NOTE = {  # by the kind of profile: uniform planned by fusion block (Profile.blocks) or layer by layer
    "blocks": "the profile's predicted speedup of SPDY's plans was 3% below to 15% above the measured "
              "one (random mixed plans: 7% off at the median, 16% at most)",
    "layers": "the profile over-predicted SPDY's plans by 49-88% (predicted/measured speedup; a profile "
              "without fusion groups: measure it again for better predictions)",
    "mixed": "the profile over-predicted SPDY's plans by 16-33% (predicted/measured speedup)",
}
UNCALIBRATED_ELSEWHERE = ("28-55% optimistic on the DP's mixed plans on a 2-core AMD EPYC with AVX-512, issue 24; "
                          "measure a calibrated profile there with spdy-recipe profile")
MODEL_ERROR_SOURCE = ("in benchmarks/latency_model.py (MobileNetV2 and ResNet18, 2-core AMD EPYC, AVX2); verify on "
                      "the target machine with spdy-recipe verify")


def unverified_evidence(profile: Profile) -> str:
    """What backs a prediction that was not measured here: the profile's calibration, or the uncalibrated
    kind's known error."""
    if profile.calibrated:
        return f"not measured here: the profile is {profile.calibration_label()}; verify on the target machine " \
               "with spdy-recipe verify"
    kind = "mixed" if profile.design == "mixed" else "blocks" if profile.fused_groups else "layers"
    return (f"not measured here: the profile is uncalibrated; {MODEL_ERROR_NOTE[kind]} {MODEL_ERROR_SOURCE}; on "
            f"other CPUs the analysis alone was further off ({UNCALIBRATED_ELSEWHERE})")


@dataclass(kw_only=True, frozen=True)
class GenerateRequest:
    """Everything ``generate`` needs. ``search`` None: SPDY's prior (or ``solve.sensitivity``) errors."""

    model: ModelRequest
    profile: ProfileRequest
    speedup: float
    output: Path
    recipe: RecipeSettings
    solve: SolveSettings = SolveSettings()
    search: SearchRequest | None = None
    verify: VerifySettings = field(default_factory=VerifySettings)
    force: bool = False
    report: Path | None = None  # also write the HTML report there (with in-context layer times when verified)
    cluster: ClusterSettings = ClusterSettings()  # Ray: the database, the search, a named hardware's profile

    def check(self) -> None:
        """Raises SpdyError on a bad request, before any work."""
        check_recipe_path(self.output)
        if self.output.is_dir():
            raise SpdyError(f"{self.output} is a folder; give a recipe file name")
        refuse_overwrite(self.output, self.force)
        self.solve.check(self.speedup)
        if not (math.isfinite(self.recipe.epochs) and self.recipe.epochs > 0):
            raise SpdyError(f"--epochs must be a positive number, got {self.recipe.epochs}")
        lr = self.recipe.init_lr
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            raise SpdyError(f"--init-lr must be a positive number, got {lr}")
        self.verify.check()
        self.cluster.check()
        if self.profile.timing.deployment.resolved().precision == "int8":  # before any timing, not at the end
            check_qat_room(self.recipe.epochs, self.recipe.pruning_end_fraction)
        if self.search and self.solve.sensitivity:
            raise SpdyError("--calib (search the errors) and --sensitivity (read them) exclude each other")
        if self.report:
            ReportRequest(recipe=self.output, output=self.report, force=self.force).check()

    @property
    def verifies(self) -> bool:
        """Verify when asked, and by default when the profile is this machine's (``--hw local``)."""
        return self.verify.enabled if self.verify.enabled is not None else self.profile.hw == LOCAL


@dataclass(kw_only=True, frozen=True)
class GenerateResult:
    """The written recipe, its plan and profile, the verification rounds when verified here, and the
    report's index.html when one was asked for."""

    path: Path
    plan: Plan
    profile: Profile
    verified: Verified | None
    report: Path | None = None

    def summary(self) -> str:
        """One line: what was promised, on which evidence, and what was written."""
        plan = self.plan
        if self.verified:
            final = self.verified.final
            evidence = (f"measured {final.measurement.describe()} here in {len(self.verified.rounds)} round(s) "
                        f"(solved for {plan.solve_speedup:.3f}x)")
        else:
            evidence = unverified_evidence(self.profile)
        return (f"target {plan.target_speedup:.3f}x: predicted {plan.predicted_speedup:.3f}x on median times, "
                f"{evidence}; {len(plan.pruned)} of {len(plan.sparsities)} layers pruned; wrote {self.path}"
                + (f" and the report {self.report}" if self.report else ""))


def generate(request: GenerateRequest, log: Log) -> GenerateResult:
    """Solve SPDY for ``request.speedup`` on the requested profile, verify it here when asked (bracketing
    the solve speedup until the measurement meets the target without overshooting, ``verify.meet_target``)
    and write the checked recipe atomically, then the HTML report when ``request.report`` names a folder
    (verified plans are analysed once more for their layers' in-context times). Raises SpdyError (nothing
    written) on bad input, an infeasible target, a target not met or a machine too busy to measure.

    With ``request.cluster`` (Ray), the database and the search run on its workers, and a named hardware whose
    profile is missing or stale is profiled on the node that offers ``hw:NAME`` (``cluster.profile``)."""
    request.check()
    bundle = request.model.load()
    note = trainer_note(bundle.spec, bundle.module)
    if note:
        warn(note)
    with open_cluster(request.cluster, log) as cluster:
        return _generate(request, bundle, cluster, log)


def _generate(request: GenerateRequest, bundle, cluster, log: Log) -> GenerateResult:
    from ..cluster.profile import obtain_profile_on
    from ..models import prunable_layers

    profile, profile_path = obtain_profile_on(cluster, request.model, bundle, request.profile, log)
    settings, searched = request.solve, None
    solver = plain_solver(request.speedup, settings)
    if request.search:
        searched, searched_calibration = searched_solver(bundle, profile, request.speedup, settings, request.search,
                                                         log, cluster)
        solver = searched.keeping()
    verified: Verified | None = None
    notes: tuple[str, ...] = ()
    if request.verifies:  # the loop solves its own first plan (aimed above the target)
        plan, verified, notes = _verify_here(bundle, profile, profile_path, request, solver, log)
    else:
        plan = solver(profile, None)
    search = None
    if searched and searched.has(plan):
        from ..solve.objective import search_summary

        state = searched.state_of(plan)
        settings, search = searched.settings_of(state), search_summary(searched.setup, searched_calibration, state)
    elif searched:
        log("[verify] a uniform plan met the target where SPDY's searched plans did not; the recipe records no "
            "search")
    model_layers = {layer.name for layer in prunable_layers(bundle.module)}
    measured = verified.final.measurement.record(verified.layer_ms) if verified else None
    points = verified.final.points if verified else ()
    text = render_checked_recipe(plan, profile, profile_path, request.recipe, settings,
                                 model_layers, measured, search, points)
    write_recipe(request.output, text)
    page = None
    if request.report:
        log(f"[report] writing {request.report}")
        try:
            page = report(ReportRequest(recipe=request.output, output=request.report, profile=profile_path,
                                        force=True, notes=notes, loaded=profile), checked=True)
        except BaseException:  # a failed or interrupted report: the command failed, so no recipe is left either
            request.output.unlink(missing_ok=True)
            raise
    return GenerateResult(path=request.output, plan=plan, profile=profile, verified=verified, report=page)


def _verify_here(bundle, profile: Profile, profile_path: Path, request: GenerateRequest, solver,
                 log: Log) -> tuple[Plan, Verified, tuple[str, ...]]:
    """The verified plan, its rounds, and the warning that the profile is another machine's (if it is). The
    first plan measured aims its prediction just above the target (``verify.loop.FIRST_AIM``)."""
    from ..profile.backends import get_backend
    from ..solve.settings import uniform_solver
    from ..verify import PlanTimer, meet_target

    backend = get_backend(request.profile.backend)
    elsewhere = warn_if_other_machine(profile.hardware, profile.engine_label, backend, f"profile {profile_path}")
    with PlanTimer(bundle, backend, profile.cores, request.verify.rounds, profile.deployment,
                   profile.baseline) as timer:
        verified = meet_target(solver, timer, request.speedup, request.verify.tolerance, request.verify.max_rounds,
                               log, profile, fallback=uniform_solver(request.speedup, request.solve))
        if request.report:
            log("[report] analysing the verified plan's layers in context")
            verified = replace(verified, layer_ms=timer.layer_times(verified.final.plan.pruned))
    final = verified.final
    if len(verified.rounds) > 1:
        log(f"[verify] met {request.speedup:.3f}x after {len(verified.rounds)} rounds with the plan predicted at "
            f"{final.plan.predicted_speedup:.3f}x: measured {final.measurement.describe()}")
    return final.plan, verified, elsewhere
