"""The main job, step by step: model -> profile -> errors -> plan -> recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .files import atomic_write_text
from .emit import RecipeSettings, render_recipe, validate_recipe
from .errors import SpdyError
from .models import ModelBundle, select_names
from .profile import Profile
from .profile.hardware import cpu_model_name
from .profile.measure import measure_profile
from .profile.store import resolve_profile
from .sensitivity import load_sensitivity, prior_errors
from .solve import Plan, plan_profile


@dataclass
class ProfileRequest:
    """How to find or measure the profile for a model."""

    hw: str
    cores: int
    grid: list[float]
    hw_root: Path
    iterations: int = 10
    warmup: int = 3
    repeats: int = 1


def default_cores() -> int:
    """All cores DeepSparse can use on this machine."""
    from deepsparse.cpu import cpu_architecture

    return int(cpu_architecture()["num_cores"])


def obtain_profile(bundle: ModelBundle, request: ProfileRequest) -> tuple[Profile, Path]:
    """Resolve ``request.hw`` for ``bundle``; ``local`` measures on this machine on a cache miss."""
    from .profile.deepsparse_timer import engine_version

    def measure() -> Profile:
        return measure_profile(bundle, request.grid, request.cores, request.hw, request.iterations,
                               request.warmup, request.repeats)

    host_key = f"{cpu_model_name()}|deepsparse {engine_version()}"
    return resolve_profile(request.hw, bundle, request.cores, request.grid, measure, host_key, request.hw_root)


def error_table(profile: Profile, selected: list[str], sensitivity: str | None) -> np.ndarray:
    """Measured errors from a sensitivity table, or SPDY's prior."""
    if sensitivity:
        return load_sensitivity(sensitivity, selected, profile.grid)
    return prior_errors(len(selected), len(profile.grid))


def solve(
    profile: Profile, speedup: float, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
    sensitivity: str | None = None,
) -> Plan:
    """Pick per-layer levels for ``speedup`` over the selected layers of ``profile``."""
    selected = select_names(profile.layer_names, include, exclude)
    return plan_profile(profile, speedup, selected, error_table(profile, selected, sensitivity))


def recipe_metadata(profile: Profile, profile_path: Path, plan: Plan, method: str, sensitivity: str | None) -> dict:
    """The ``__metadata__`` block: where the numbers came from."""
    hardware = profile.hardware
    return {
        "tool": "spdy-recipes",
        "tool_version": __version__,
        "model": profile.model["spec"],
        "model_graph_hash": profile.model["graph_hash"],
        "method": method,
        "hardware": hardware.get("name"),
        "cpu_model": hardware.get("cpu_model"),
        "isa": hardware.get("isa"),
        "engine": f"{profile.engine['name']} {profile.engine['version']}",
        "batch_size": profile.batch_size,
        "cores": profile.cores,
        "profile_file": profile_path.name,
        "profile_hash": profile.content_hash(),
        "errors": "sensitivity table" if sensitivity else "SPDY prior",
        "target_speedup": round(plan.target_speedup, 4),
        "predicted_speedup": round(plan.predicted_speedup, 4),
        "predicted_ms": round(plan.predicted_ms, 4),
        "dense_ms": round(plan.dense_ms, 4),
    }


def write_recipe(
    path: Path, plan: Plan, profile: Profile, profile_path: Path, settings: RecipeSettings,
    model_layers: set[str], sensitivity: str | None = None,
) -> str:
    """Render, validate with SparseML, and atomically write the recipe; returns its text."""
    if path.suffix not in (".yaml", ".md"):
        raise SpdyError(f"recipe file {path} must end in .yaml or .md (SparseML rejects other names)")
    pruned = plan.pruned
    if not pruned:
        raise SpdyError("the solved profile prunes no layer; nothing to write")
    metadata = recipe_metadata(profile, profile_path, plan, settings.method, sensitivity)
    header = [
        f"SPDY recipe by spdy-recipes {__version__} for {profile.model['spec']} ({settings.method})",
        f"target {plan.target_speedup:.3f}x, predicted {plan.predicted_speedup:.3f}x in "
        f"{metadata['engine']} on {metadata['hardware']} ({metadata['cpu_model']}), "
        f"batch {profile.batch_size}, {profile.cores} cores",
        f"{len(pruned)} of {len(plan.sparsities)} layers pruned; layers not listed stay dense.",
        "Override any variable below with recipe args, e.g. num_epochs=30.",
    ]
    text = render_recipe(pruned, settings, metadata, header)
    expected = {name: (None if settings.method == "constant" else value) for name, value in pruned.items()}
    validate_recipe(text, expected, model_layers)
    atomic_write_text(path, text)
    return text
