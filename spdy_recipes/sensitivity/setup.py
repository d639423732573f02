"""One model made ready for SPDY's search (``AccuracySetup``): its calibration and held-out splits, its
reconstruction database, and scorers of the dense model (SPDY, Frantar & Alistarh 2022, section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..calibration import CalibrationSet, load_calibration
from ..errors import SpdyError
from ..models import ModelBundle, prunable_layers
from ..progress import Log
from .database import Database, obtain_database
from .scoring import Scorer
from .stitch import Stitcher


@dataclass(kw_only=True, frozen=True)
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


@dataclass(kw_only=True)
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
            log: Log, mask_type: str = "unstructured") -> AccuracySetup:
    """Load calibration data, obtain the database (cached; its levels pruned in ``mask_type``'s pattern), and
    score the dense model.

    The held-out scorer's loss is always distillation to dense (so that loss increases compare across
    methods); its accuracy is top-1 against the labels where the held-out data has them. SpdyError when
    ``heldout_source`` is the calibration source itself (use ``holdout`` for a disjoint split)."""
    calibration, heldout = _load_splits(bundle, settings)
    log(f"[calibration] {calibration.source}: {len(calibration)} samples for the search, "
        f"{len(heldout)} held out")
    layers = [layer for layer in prunable_layers(bundle.module) if layer.name in set(selected)]
    database, path, reused = obtain_database(bundle, layers, grid, calibration, settings.database, log, mask_type)
    log(f"[database] {'reused' if reused else 'built'} {path}")
    scorer = Scorer(bundle.module, calibration, bundle.batch_size)
    heldout_scorer = Scorer(bundle.module, heldout, bundle.batch_size, distill=True) if len(heldout) else None
    return AccuracySetup(bundle=bundle, selected=selected, calibration=calibration, heldout=heldout, database=database,
                         database_reused=reused,
                         stitcher=Stitcher(bundle.module, database), scorer=scorer, heldout_scorer=heldout_scorer)


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
