"""The accuracy side of the job: calibration data -> reconstruction database -> SPDY search.

``prepare`` loads the data, builds or reuses the database and readies in-place stitching and scoring;
``search_coefficients`` runs (or resumes, or reuses) the search for one target on one profile;
``SearchedSolver`` solves plans whose sensitivities are searched for the speed they are solved for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import SpdyError
from .files import cache_dir
from .models import ModelBundle, prunable_layers
from .pipeline import SolveSettings, solve
from .profile import Profile
from .sensitivity import prior_errors
from .sensitivity.calibration import CalibrationSet, load_calibration
from .sensitivity.database import Database, obtain_database
from .sensitivity.scoring import Scorer
from .sensitivity.stitch import Stitcher
from .solve import Plan, plan_profile
from .solve.search import SearchSettings, SearchState, search

Log = Callable[[str], None]
Progress = Callable[[SearchState], None]
LOSS_VERSION = 2  # bumped when the calibration loss changes meaning (2: padding tokens left out)


@dataclass(frozen=True)
class CalibrationSettings:
    """Where the calibration data comes from and how the database is made: ``holdout`` samples are a
    disjoint split of ``source``, or come from ``heldout_source`` when one is given (all of them
    held out: e.g. labelled images to evaluate on, while the search calibrates on other photos)."""

    source: str
    samples: int = 64
    holdout: int = 0
    seed: int = 0
    database: str = "obs"
    heldout_source: str | None = None


@dataclass
class AccuracySetup:
    """One model ready to be stitched from its database and scored, on calibration and held-out data."""

    bundle: ModelBundle
    selected: list[str]
    calibration: CalibrationSet
    heldout: CalibrationSet
    database: Database
    database_reused: bool
    stitcher: Stitcher
    scorer: Scorer
    heldout_scorer: Scorer | None


def prepare(bundle: ModelBundle, grid: list[float], selected: list[str], settings: CalibrationSettings,
            log: Log) -> AccuracySetup:
    """Load calibration data, obtain the database (cached), and score the dense model.

    The held-out scorer's loss is always distillation to dense (so that loss increases compare across
    methods); its accuracy is top-1 against the labels where the held-out data has them. SpdyError when
    ``heldout_source`` is the calibration source itself (use ``holdout`` for a disjoint split)."""
    calibration, heldout = _load_splits(bundle, settings)
    log(f"[calibration] {calibration.source}: {len(calibration)} samples for the search, "
        f"{len(heldout)} held out")
    layers = [layer for layer in prunable_layers(bundle.module) if layer.name in set(selected)]
    database, path, reused = obtain_database(bundle, layers, grid, calibration, settings.database, log)
    log(f"[database] {'reused' if reused else 'built'} {path}")
    scorer = Scorer(bundle.module, calibration, bundle.batch_size)
    heldout_scorer = Scorer(bundle.module, heldout, bundle.batch_size, distill=True) if len(heldout) else None
    return AccuracySetup(bundle, selected, calibration, heldout, database, reused,
                         Stitcher(bundle.module, database), scorer, heldout_scorer)


OVERLAPPING_SOURCES = ({"builtin:images", "builtin:objects"},)  # builtin:objects holds builtin:images' photos


def check_heldout_source(source: str, heldout_source: str | None) -> None:
    """SpdyError when the held-out data is (or contains) the calibration data: same source, same path."""
    if heldout_source is None:
        return
    same = Path(source).resolve() == Path(heldout_source).resolve() if not source.startswith("builtin:") \
        else source == heldout_source
    if same or {source, heldout_source} in OVERLAPPING_SOURCES:
        raise SpdyError(f"the held-out data ({heldout_source}) shares images with the calibration data "
                        f"({source}); give another source, or none for a disjoint split of --calib")


def _load_splits(bundle: ModelBundle, settings: CalibrationSettings) -> tuple[CalibrationSet, CalibrationSet]:
    if settings.heldout_source is None:
        return load_calibration(settings.source, bundle, settings.samples, settings.holdout, settings.seed)
    check_heldout_source(settings.source, settings.heldout_source)
    if settings.holdout < 1:
        raise SpdyError(f"held-out data {settings.heldout_source} needs at least 1 held-out sample")
    calibration, _ = load_calibration(settings.source, bundle, settings.samples, 0, settings.seed)
    heldout, _ = load_calibration(settings.heldout_source, bundle, settings.holdout, 0, settings.seed)
    return calibration, heldout


class ProfileObjective:
    """Coefficients -> DP profile on the hardware profile (solved for ``solve_speedup`` when verification
    moved it) -> stitched calibration loss."""

    def __init__(self, setup: AccuracySetup, profile: Profile, speedup: float, quantile: float,
                 solve_speedup: float | None = None) -> None:
        self.setup, self.profile, self.speedup, self.quantile = setup, profile, speedup, quantile
        self.solve_speedup = solve_speedup

    def levels(self, coefficients: np.ndarray) -> tuple[int, ...]:
        errors = prior_errors(len(self.setup.selected), len(self.profile.grid), coefficients)
        plan = plan_profile(self.profile, self.speedup, self.setup.selected, errors, self.quantile,
                            self.solve_speedup)
        return tuple(plan.levels[name] for name in self.setup.selected)

    def loss(self, levels: tuple[int, ...]) -> float:
        self.setup.stitcher.apply_levels(dict(zip(self.setup.selected, levels)))
        return self.setup.scorer.loss()


def search_key(objective: ProfileObjective, settings: SearchSettings) -> str:
    """What a search depends on (not its budget): the table, database, target, layers, loss and settings."""
    setup = objective.setup
    payload = {"profile": objective.profile.content_hash(), "database": setup.database.key,
               "speedup": round(objective.speedup, 6), "quantile": objective.quantile, "layers": setup.selected,
               "search": settings.identity(), "loss": setup.scorer.kind, "loss_version": LOSS_VERSION,
               "solve_speedup": round(objective.solve_speedup or objective.speedup, 6)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def search_coefficients(setup: AccuracySetup, profile: Profile, speedup: float, quantile: float,
                        settings: SearchSettings, progress: Callable[[SearchState], None], log: Log,
                        solve_speedup: float | None = None) -> tuple[SearchState, Path]:
    """Search (resuming a checkpoint of the same inputs); the model is left dense afterwards."""
    objective = ProfileObjective(setup, profile, speedup, quantile, solve_speedup)
    key = search_key(objective, settings)
    checkpoint = cache_dir() / "searches" / f"{setup.bundle.slug}-{key}.json"
    if checkpoint.is_file():
        log(f"[search] continuing from checkpoint {checkpoint}")
    try:
        state = search(objective, len(setup.selected), settings, key, checkpoint, progress)
    finally:
        setup.stitcher.restore()
    return state, checkpoint


def search_summary(setup: AccuracySetup, settings: CalibrationSettings, state: SearchState) -> dict:
    """What the recipe metadata records of a search."""
    return {
        "calibration": setup.calibration.source,
        "calibration_fingerprint": setup.calibration.fingerprint(),
        "samples": len(setup.calibration),
        "seed": settings.seed,
        "database": settings.database,
        "loss": setup.scorer.kind,
        "candidates": state.step,
        "finished": state.finished,
        "calibration_loss": round(state.best_loss, 6),
        "prior_loss": round(state.curve[0][1], 6),
        "curve": [[int(step), round(loss, 6)] for step, loss in state.curve],
    }


class SearchedSolver:
    """``solver(profile, solve_speedup)``: a plan for ``target`` whose layer sensitivities were searched on
    calibration data for exactly that profile and solve speedup, so that a plan for another budget is
    searched again rather than re-solved with coefficients found for another one. Searches are checkpointed,
    so asking again costs nothing. ``keeping()`` is the solver verification uses: the last search's
    coefficients, re-solved on a refitted table and another speed without searching again. ``progress()``
    gives a context manager yielding the callback that follows one search."""

    def __init__(self, setup: AccuracySetup, profile: Profile, target: float, settings: SolveSettings,
                 search: SearchSettings, progress: Callable[[], AbstractContextManager[Progress]], log: Log) -> None:
        self.setup, self.profile, self.target, self.settings = setup, profile, target, settings
        self.search, self.progress, self.log = search, progress, log
        self.states: dict[int, SearchState] = {}
        self.history: list[SearchState] = []  # every search, in the order they were asked for
        self.last: SearchState | None = None

    def __call__(self, profile: Profile, solve_speedup: float | None = None) -> Plan:
        """A searched plan for the target on ``profile``, solved for ``solve_speedup`` (default the target)."""
        target = self.target
        solve(profile, target, self.settings, solve_speedup)  # infeasible: fail before searching
        with self.progress() as progress:
            state, checkpoint = search_coefficients(self.setup, profile, target, self.settings.quantile,
                                                    self.search, progress, self.log, solve_speedup)
        self.log(f"[search] {state.step} candidates{' (finished)' if state.finished else ''}: calibration loss "
                 f"({self.setup.scorer.kind}) {state.best_loss:.5g}, prior alone {state.curve[0][1]:.5g}; "
                 f"checkpoint {checkpoint}")
        self.history.append(state)
        self.last = state
        return self._solve(profile, state, solve_speedup)

    def keeping(self) -> Callable[[Profile, float | None], Plan]:
        """``solver(profile, solve_speedup)`` with the last search's coefficients (searching first if none ran)."""
        def solver(profile: Profile, solve_speedup: float | None = None) -> Plan:
            if self.last is None:
                return self(profile, solve_speedup)
            return self._solve(profile, self.last, solve_speedup)

        return solver

    def _solve(self, profile: Profile, state: SearchState, solve_speedup: float | None) -> Plan:
        plan = solve(profile, self.target, self.settings_of(state), solve_speedup)
        self.states[id(plan)] = state
        return plan

    def settings_of(self, state: SearchState) -> SolveSettings:
        return replace(self.settings, coefficients=tuple(state.best))

    def has(self, plan: Plan) -> bool:
        """Whether this solver made ``plan``."""
        return id(plan) in self.states

    def state_of(self, plan: Plan) -> SearchState:
        """The search that produced ``plan``."""
        return self.states[id(plan)]
