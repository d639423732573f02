"""The accuracy side of the job: calibration data -> reconstruction database -> SPDY search.

``prepare`` loads the data, builds or reuses the database and readies in-place stitching and scoring;
``search_coefficients`` runs (or resumes, or reuses) the search for one target on one profile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import cache_dir
from .models import ModelBundle, prunable_layers
from .profile import Profile
from .sensitivity import prior_errors
from .sensitivity.calibration import CalibrationSet, load_calibration
from .sensitivity.database import Database, obtain_database
from .sensitivity.scoring import Scorer
from .sensitivity.stitch import Stitcher
from .solve import plan_profile
from .solve.search import SearchSettings, SearchState, search

Log = Callable[[str], None]


@dataclass(frozen=True)
class CalibrationSettings:
    """Where the calibration data comes from and how the database is made."""

    source: str
    samples: int = 64
    holdout: int = 0
    seed: int = 0
    database: str = "obs"


@dataclass
class AccuracySetup:
    """One model ready to be stitched from its database and scored, on calibration and held-out data."""

    bundle: ModelBundle
    selected: list[str]
    calibration: CalibrationSet
    heldout: CalibrationSet
    database: Database
    database_path: Path
    database_reused: bool
    stitcher: Stitcher
    scorer: Scorer
    heldout_scorer: Scorer | None


def prepare(bundle: ModelBundle, grid: list[float], selected: list[str], settings: CalibrationSettings,
            log: Log) -> AccuracySetup:
    """Load calibration data, obtain the database (cached), and score the dense model."""
    calibration, heldout = load_calibration(settings.source, bundle, settings.samples, settings.holdout,
                                            settings.seed)
    log(f"[calibration] {calibration.source}: {len(calibration)} samples for the search, "
        f"{len(heldout)} held out")
    layers = [layer for layer in prunable_layers(bundle.module) if layer.name in set(selected)]
    database, path, reused = obtain_database(bundle, layers, grid, calibration, settings.database, log)
    log(f"[database] {'reused' if reused else 'built'} {path}")
    scorer = Scorer(bundle.module, calibration, bundle.batch_size)
    heldout_scorer = Scorer(bundle.module, heldout, bundle.batch_size) if len(heldout) else None
    return AccuracySetup(bundle, selected, calibration, heldout, database, path, reused,
                         Stitcher(bundle.module, database), scorer, heldout_scorer)


class ProfileObjective:
    """Coefficients -> DP profile on the hardware profile -> stitched calibration loss."""

    def __init__(self, setup: AccuracySetup, profile: Profile, speedup: float, quantile: float) -> None:
        self.setup, self.profile, self.speedup, self.quantile = setup, profile, speedup, quantile

    def levels(self, coefficients: np.ndarray) -> tuple[int, ...]:
        errors = prior_errors(len(self.setup.selected), len(self.profile.grid), coefficients)
        plan = plan_profile(self.profile, self.speedup, self.setup.selected, errors, self.quantile)
        return tuple(plan.levels[name] for name in self.setup.selected)

    def loss(self, levels: tuple[int, ...]) -> float:
        self.setup.stitcher.apply_levels(dict(zip(self.setup.selected, levels)))
        return self.setup.scorer.loss()


def search_key(setup: AccuracySetup, profile: Profile, speedup: float, quantile: float,
               settings: SearchSettings) -> str:
    payload = {"profile": profile.content_hash(), "database": setup.database.key, "speedup": round(speedup, 6),
               "quantile": quantile, "layers": setup.selected, "search": settings.identity(),
               "loss": setup.scorer.kind}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def search_coefficients(setup: AccuracySetup, profile: Profile, speedup: float, quantile: float,
                        settings: SearchSettings, progress: Callable[[SearchState], None],
                        log: Log) -> tuple[SearchState, Path]:
    """Search (resuming a checkpoint of the same inputs); the model is left dense afterwards."""
    key = search_key(setup, profile, speedup, quantile, settings)
    checkpoint = cache_dir() / "searches" / f"{setup.bundle.slug}-{key}.json"
    if checkpoint.is_file():
        log(f"[search] continuing from checkpoint {checkpoint}")
    try:
        state = search(ProfileObjective(setup, profile, speedup, quantile), len(setup.selected), settings, key,
                       checkpoint, progress)
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
