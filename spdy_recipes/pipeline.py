"""The main job, step by step: model -> profile -> errors -> plan -> recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .emit import RecipeSettings, render_recipe, validate_recipe
from .errors import SpdyError
from .files import atomic_write_text
from .models import select_names
from .profile import Profile
from .sensitivity import load_sensitivity, prior_errors
from .solve import Plan, plan_profile
from .solve.planner import DEFAULT_QUANTILE, fastest_speedup, uniform_plan


@dataclass(frozen=True)
class SolveSettings:
    """What the solver is told besides the speedup: which layers, which errors, how conservative."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sensitivity: str | None = None
    quantile: float = DEFAULT_QUANTILE
    coefficients: tuple[float, ...] = ()  # SPDY search result: one per selected layer, scaling the prior


def error_table(profile: Profile, selected: list[str], settings: SolveSettings) -> np.ndarray:
    """Measured errors from a sensitivity table, or SPDY's prior scaled by searched coefficients."""
    if settings.sensitivity:
        return load_sensitivity(settings.sensitivity, selected, profile.grid)
    if settings.coefficients and len(settings.coefficients) != len(selected):
        raise SpdyError(f"{len(settings.coefficients)} searched coefficients for {len(selected)} selected layers")
    return prior_errors(len(selected), len(profile.grid), settings.coefficients or None)


def solve(profile: Profile, speedup: float, settings: SolveSettings = SolveSettings(),
          solve_speedup: float | None = None) -> Plan:
    """Pick per-layer levels for ``speedup`` (solved for ``solve_speedup`` when verification moved it)
    over the selected layers of ``profile``."""
    selected = select_names(profile.layer_names, settings.include, settings.exclude)
    errors = error_table(profile, selected, settings)
    return plan_profile(profile, speedup, selected, errors, settings.quantile, solve_speedup)


def uniform_solver(profile: Profile, speedup: float, settings: SolveSettings = SolveSettings()):
    """``solver(solve_speedup)`` over uniform plans (every selected layer at one level,
    ``solve.planner.uniform_plan``): what verification brackets when the DP's plans fall short here."""
    selected = select_names(profile.layer_names, settings.include, settings.exclude)
    errors = error_table(profile, selected, settings)
    return lambda solve_speedup=None: uniform_plan(profile, speedup, selected, errors, settings.quantile,
                                                   solve_speedup)


def best_reachable(profile: Profile, settings: SolveSettings = SolveSettings()) -> float:
    """The fastest speedup the profile allows: every fusion unit of the selected layers at its fastest
    level, on the ``settings.quantile`` of the repeats, against the median dense latency (below 1.0 when no sparse
    level is faster than dense on this machine)."""
    selected = select_names(profile.layer_names, settings.include, settings.exclude)
    return fastest_speedup(profile, selected, settings.quantile)


def recipe_metadata(profile: Profile, profile_path: Path, plan: Plan, method: str, settings: SolveSettings,
                    measured: dict | None, search: dict | None = None) -> dict:
    """The ``__metadata__`` block: where the numbers came from, and how to make them again."""
    hardware = profile.hardware
    regime = "latency" if profile.batch_size == 1 else "throughput"
    metadata = {
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
        "objective": f"{regime} at batch {profile.batch_size} on {profile.cores} cores",
        "profile_file": profile_path.name,
        "profile_hash": profile.content_hash(),
        "errors": _errors_label(settings),
        "sensitivity": settings.sensitivity,
        "include": list(settings.include),
        "exclude": list(settings.exclude),
        "quantile": settings.quantile,
        "target_speedup": round(plan.target_speedup, 4),
        "solve_speedup": round(plan.solve_speedup, 8),  # (to re-solve the same plan)
        "predicted_speedup": round(plan.predicted_speedup, 4),
        "guaranteed_speedup": round(plan.guaranteed_speedup, 4),
        "predicted_ms": round(plan.predicted_ms, 4),
        "dense_ms": round(plan.dense_ms, 4),
    }
    if settings.coefficients:
        metadata["coefficients"] = [round(c, 6) for c in settings.coefficients]
        metadata["search"] = search
    busy = profile.engine.get("other_processes_cpu")
    if busy is not None:
        metadata["profile_other_processes_cpu"] = busy
    if measured:
        metadata.update({f"measured_{key}": value for key, value in measured.items()})
    return metadata


def _errors_label(settings: SolveSettings) -> str:
    if settings.sensitivity:
        return "sensitivity table"
    return "SPDY prior x searched coefficients" if settings.coefficients else "SPDY prior"


def render_checked_recipe(
    plan: Plan, profile: Profile, profile_path: Path, recipe: RecipeSettings, settings: SolveSettings,
    model_layers: set[str], measured: dict | None = None, search: dict | None = None,
) -> str:
    """The recipe text for ``plan``, loaded with SparseML and checked layer by layer."""
    pruned = plan.pruned
    if not pruned:
        raise SpdyError("the solved profile prunes no layer; nothing to write")
    metadata = recipe_metadata(profile, profile_path, plan, recipe.method, settings, measured, search)
    header = [
        f"SPDY recipe by spdy-recipes {__version__} for {profile.model['spec']} ({recipe.method})",
        f"target {plan.target_speedup:.3f}x, predicted {plan.predicted_speedup:.3f}x in "
        f"{metadata['engine']} on {metadata['hardware']} ({metadata['cpu_model']}), "
        f"batch {profile.batch_size}, {profile.cores} cores",
        f"{len(pruned)} of {len(plan.sparsities)} layers pruned; layers not listed stay dense.",
        "Override any variable below with recipe args, e.g. num_epochs=30.",
    ]
    text = render_recipe(pruned, recipe, metadata, header)
    expected = {name: (None if recipe.method == "constant" else value) for name, value in pruned.items()}
    validate_recipe(text, expected, model_layers)
    return text


def check_recipe_path(path: Path) -> None:
    if path.suffix not in (".yaml", ".md"):
        raise SpdyError(f"recipe file {path} must end in .yaml or .md (SparseML rejects other names)")


def write_recipe(path: Path, text: str) -> None:
    """Atomically write a checked recipe."""
    check_recipe_path(path)
    atomic_write_text(path, text)
