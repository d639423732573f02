"""One model made ready for SPDY's search (``AccuracySetup``): its calibration and held-out splits, its
reconstruction database, and scorers of the dense model (SPDY, Frantar & Alistarh 2022, section 4)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import torch

from ..calibration import CalibrationSet, load_calibration
from ..device import on_cpu
from ..errors import SpdyError
from ..models import ModelBundle, prunable_layers
from ..progress import Log
from .database import Database, LayerBuilder, build_locally, obtain_database
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


class LossPool(Protocol):
    """Scores plans elsewhere, ``width`` at once (``cluster.scoring.ScoringPool``)."""

    width: int

    def losses(self, plans: list[tuple[int, ...]]) -> list[float]:
        """The calibration loss of each plan (a grid level per selected layer), in order."""

    def close(self) -> None:
        """Stop the workers (a later ``losses`` starts them again)."""


@dataclass(kw_only=True)
class AccuracySetup:
    """One model ready to be stitched from its database and scored, on calibration and held-out data; the
    search's candidates are scored by ``pool`` when one is set (Ray actors), else here."""

    bundle: ModelBundle
    selected: list[str]
    calibration: CalibrationSet
    heldout: CalibrationSet
    database: Database
    database_reused: bool
    stitcher: Stitcher
    scorer: Scorer
    heldout_scorer: Scorer | None
    pool: LossPool | None = None


def prepare(bundle: ModelBundle, grid: list[float], selected: list[str], settings: CalibrationSettings,
            log: Log, mask_type: str = "unstructured", device: torch.device | None = None,
            builder: LayerBuilder = build_locally) -> AccuracySetup:
    """Load calibration data, obtain the database (cached; its levels pruned in ``mask_type``'s pattern), and
    score the dense model.

    ``device`` (``device.resolve_device``; None: the CPU): where the setup's torch work runs. Off the CPU the
    setup holds a copy of the model and of the calibration data there (``bundle`` itself stays on the CPU for
    exports and timing); Hessians accumulate in float64 on it, and the database is stored on the CPU.
    ``builder``: how the database's layers are built when it is not cached (here, or Ray tasks).

    The held-out scorer's loss is always distillation to dense (so that loss increases compare across
    methods); its accuracy is top-1 against the labels where the held-out data has them. SpdyError when
    ``heldout_source`` is the calibration source itself (use ``holdout`` for a disjoint split)."""
    calibration, heldout = _load_splits(bundle, settings)
    if device is not None and not on_cpu(device):
        bundle = replace(bundle, module=copy.deepcopy(bundle.module).to(device),
                         inputs={name: tensor.to(device) for name, tensor in bundle.inputs.items()})
        calibration, heldout = calibration.to(device), heldout.to(device)
        log(f"[calibration] torch work on {device}")
    log(f"[calibration] {calibration.source}: {len(calibration)} samples for the search, "
        f"{len(heldout)} held out")
    layers = [layer for layer in prunable_layers(bundle.module) if layer.name in set(selected)]
    database, path, reused = obtain_database(bundle, layers, grid, calibration, settings.database, log, mask_type,
                                             builder)
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
