"""SPDY's search objective and the solver it makes: coefficients -> DP plan -> stitched calibration loss
(Frantar & Alistarh 2022, section 4), searched by ``solve.search`` and checkpointed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import SpdyError
from ..files import cache_dir
from ..profile import Profile
from ..progress import Log
from ..sensitivity import prior_errors
from ..sensitivity.setup import AccuracySetup, CalibrationSettings
from .planner import Plan, plan_profile
from .search import SearchSettings, SearchState, search
from .settings import SolveSettings, solve

Progress = Callable[[SearchState], None]
LOSS_VERSION = 2  # bumped when the calibration loss changes meaning (2: padding tokens left out)


class ProfileObjective:
    """Coefficients -> DP profile on the hardware profile (solved for ``solve_speedup`` when verification
    moved it) -> stitched calibration loss; scored here, or by the setup's pool of Ray actors (``setup.pool``,
    ``width`` plans at once)."""

    def __init__(self, setup: AccuracySetup, profile: Profile, speedup: float, quantile: float,
                 solve_speedup: float | None = None) -> None:
        self.setup, self.profile, self.speedup, self.quantile = setup, profile, speedup, quantile
        self.solve_speedup = solve_speedup
        self.width = setup.pool.width if setup.pool is not None else 1

    def levels(self, coefficients: npt.NDArray[np.float64]) -> tuple[int, ...]:
        errors = prior_errors(len(self.setup.selected), len(self.profile.grid), coefficients)
        plan = plan_profile(self.profile, self.speedup, self.setup.selected, errors, self.quantile,
                            self.solve_speedup)
        return tuple(plan.levels[name] for name in self.setup.selected)

    def loss(self, levels: tuple[int, ...]) -> float:
        """The calibration loss of the model stitched at ``levels`` (one per selected layer), here."""
        self.setup.stitcher.apply_levels(dict(zip(self.setup.selected, levels, strict=True)))
        return self.setup.scorer.loss()

    def losses(self, plans: list[tuple[int, ...]]) -> list[float]:
        """Each plan's calibration loss, in order: by the setup's pool when it has one, else here."""
        if not plans:
            return []
        if self.setup.pool is not None:
            return self.setup.pool.losses(plans)
        return [self.loss(levels) for levels in plans]


def search_key(objective: ProfileObjective, settings: SearchSettings) -> str:
    """What a search depends on (not its budget): the table, database, target and the dense model it is over,
    layers, loss and settings."""
    setup = objective.setup
    payload = {"profile": objective.profile.content_hash(), "database": setup.database.key,
               **({"baseline_ms": round(objective.profile.dense_ms, 6)}  # an INT8 profile seen over dense fp32
                  if objective.profile.baseline_ms is not None else {}),
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


def search_summary(setup: AccuracySetup, settings: CalibrationSettings, state: SearchState) -> dict[str, Any]:
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
        """A searched plan for the target on ``profile``, solved for ``solve_speedup`` (default the target). An
        infeasible solve speedup raises SpdyError (from the DP) before any candidate is scored, or at the final
        re-solve when a finished checkpoint is resumed."""
        target = self.target
        with self.progress() as progress:
            state, checkpoint = search_coefficients(self.setup, profile, target, self.settings.quantile,
                                                    self.search, progress, self.log, solve_speedup)
        if state.best is None:  # every candidate's loss was NaN (or none was scored): nothing to solve with
            raise SpdyError(f"the search (key {state.key}) kept no coefficients: no candidate had a finite loss")
        self.log(f"[search] {state.step} candidates{' (finished)' if state.finished else ''}: calibration loss "
                 f"({self.setup.scorer.kind}) {state.best_loss:.5g}, prior alone {state.curve[0][1]:.5g}; "
                 f"checkpoint {checkpoint}")
        self.history.append(state)
        self.last = state
        return self._solve(profile, state, solve_speedup)

    def keeping(self) -> Callable[[Profile, float | None], Plan]:
        """``solver(profile, solve_speedup)`` with the last search's coefficients. When no search ran yet, the
        first call searches once for the target on the solver's own profile (never at the solve speedup asked
        for: verification probes the profile's reach at a speedup every plan meets, where every candidate
        would score the same), then re-solves for ``solve_speedup``."""
        def solver(profile: Profile, solve_speedup: float | None = None) -> Plan:
            if self.last is None:
                self(self.profile, None)
                if self.setup.pool is not None:  # no other search follows: free the workers before any timing
                    self.setup.pool.close()
            assert self.last is not None  # set by the search just run
            return self._solve(profile, self.last, solve_speedup)

        return solver

    def _solve(self, profile: Profile, state: SearchState, solve_speedup: float | None) -> Plan:
        plan = solve(profile, self.target, self.settings_of(state), solve_speedup)
        self.states[id(plan)] = state
        return plan

    def settings_of(self, state: SearchState) -> SolveSettings:
        if state.best is None:  # every candidate's loss was NaN: nothing to re-solve with
            raise SpdyError(f"the search (key {state.key}) kept no coefficients: no candidate had a finite loss")
        return replace(self.settings, coefficients=tuple(state.best))

    def has(self, plan: Plan) -> bool:
        """Whether this solver made ``plan``."""
        return id(plan) in self.states

    def state_of(self, plan: Plan) -> SearchState:
        """The search that produced ``plan``."""
        return self.states[id(plan)]
