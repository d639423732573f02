"""Rebuild every recipe of a manifest from stored profiles, or check that the committed ones are current."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .emit import RecipeSettings
from .errors import SpdyError
from .files import atomic_write_text
from .manifest import RecipeJob, load_manifest
from .models import ModelBundle, load_model, prunable_layers
from .models.spec import parse_input_shape
from .pipeline import SolveSettings, render_checked_recipe, solve
from .profile.store import ProfileRequest, obtain_profile


@dataclass(frozen=True)
class Outcome:
    """What happened (or would happen) to one recipe file."""

    path: Path
    status: str  # current, written, changed, missing, error
    detail: str = ""

    @property
    def ok_for_check(self) -> bool:
        return self.status == "current"


@lru_cache(maxsize=8)
def _model(spec: str, batch_size: int, input_shape: str | None) -> ModelBundle:
    return load_model(spec, batch_size, parse_input_shape(input_shape))


def build_recipe(job: RecipeJob, hw_root: Path, base: Path) -> str:
    """The recipe text ``job`` asks for, from the stored profile of its hardware (no engine needed)."""
    bundle = _model(job.model, job.batch_size, job.input_shape)
    request = ProfileRequest(job.hardware, cores=job.cores, hw_root=hw_root)
    profile, profile_path = obtain_profile(bundle, request)
    sensitivity = str(base / job.sensitivity) if job.sensitivity else None
    settings = SolveSettings(job.include, job.exclude, sensitivity, job.quantile)
    plan = solve(profile, job.speedup, settings)
    model_layers = {layer.name for layer in prunable_layers(bundle.module)}
    recipe = RecipeSettings(method=job.method, epochs=job.epochs)
    return render_checked_recipe(plan, profile, profile_path, recipe, settings, model_layers)


def regenerate(manifest: str | Path, check: bool, log: Callable[[str], None]) -> list[Outcome]:
    """Build every recipe; write changed ones unless ``check``. Every job is tried even after a failure."""
    jobs, hw_root = load_manifest(manifest)
    base = Path(manifest).parent
    outcomes = []
    for number, job in enumerate(jobs, 1):
        try:
            text = build_recipe(job, hw_root, base)
        except SpdyError as exc:
            outcomes.append(Outcome(job.output, "error", str(exc)))
        else:
            old = job.output.read_text() if job.output.is_file() else None
            if old == text:
                outcomes.append(Outcome(job.output, "current"))
            elif check:
                outcomes.append(Outcome(job.output, "missing" if old is None else "changed"))
            else:
                atomic_write_text(job.output, text)
                outcomes.append(Outcome(job.output, "written"))
        log(f"[regenerate] {number}/{len(jobs)} {outcomes[-1].status}: {job.output}")
    return outcomes
