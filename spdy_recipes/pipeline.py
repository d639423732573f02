"""The main job, step by step: model -> profile -> errors -> plan -> recipe."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .emit import RecipeSettings, render_recipe, validate_recipe
from .emit.schedule import mfac_memory_bytes, min_steps_per_epoch
from .errors import SpdyError, warn
from .files import atomic_write_text
from .models import select_names
from .profile import Profile
from .profile.correction import EnginePoint
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


def uniform_solver(speedup: float, settings: SolveSettings = SolveSettings()):
    """``solver(profile, solve_speedup)`` over uniform plans (every selected layer at one level,
    ``solve.planner.uniform_plan``): what verification brackets when the DP's plans fall short here."""
    def solver(profile: Profile, solve_speedup: float | None = None) -> Plan:
        selected = select_names(profile.layer_names, settings.include, settings.exclude)
        errors = error_table(profile, selected, settings)
        return uniform_plan(profile, speedup, selected, errors, settings.quantile, solve_speedup)

    return solver


def best_reachable(profile: Profile, settings: SolveSettings = SolveSettings()) -> float:
    """The fastest speedup the profile allows: every fusion unit of the selected layers at its fastest
    level, on the ``settings.quantile`` of the repeats, against the median dense latency (below 1.0 when no sparse
    level is faster than dense on this machine)."""
    selected = select_names(profile.layer_names, settings.include, settings.exclude)
    return fastest_speedup(profile, selected, settings.quantile)


def recipe_metadata(profile: Profile, profile_path: Path, plan: Plan, method: str, settings: SolveSettings,
                    measured: dict | None, search: dict | None = None, points: tuple[EnginePoint, ...] = ()) -> dict:
    """The ``__metadata__`` block: where the numbers came from, and how to make them again. ``points`` are
    the plans verification measured before solving ``plan`` (``verify_points``): the profile refitted on them
    (``Profile.refitted``) is the table ``plan`` was solved and predicted on."""
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
        "engine": profile.engine_label,
        "batch_size": profile.batch_size,
        "cores": profile.cores,
        "input_shapes": {name: shape[1:] for name, shape in (profile.model.get("input_shapes") or {}).items()},
        **({"num_classes": profile.model["num_classes"]} if "num_classes" in profile.model else {}),
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
        "latency_model": profile.refitted(points).calibration_label(),
        "guaranteed_speedup": round(plan.guaranteed_speedup, 4),
        "predicted_ms": round(plan.predicted_ms, 4),
        "dense_ms": round(plan.dense_ms, 4),
    }
    if points:
        metadata["verify_points"] = [point.to_dict() for point in points]
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
    points: tuple[EnginePoint, ...] = (),
) -> str:
    """The recipe text for ``plan``, loaded with SparseML and checked layer by layer (``points``: see
    ``recipe_metadata``)."""
    pruned = plan.pruned
    if not pruned:
        raise SpdyError("the solved profile prunes no layer; nothing to write")
    metadata = recipe_metadata(profile, profile_path, plan, recipe.method, settings, measured, search, points)
    schedule_lines = schedule_notes(recipe, profile, pruned, metadata)
    header = [
        f"SPDY recipe by spdy-recipes {__version__} for {profile.model['spec']} ({recipe.method})",
        f"target {plan.target_speedup:.3f}x, predicted {plan.predicted_speedup:.3f}x in "
        f"{metadata['engine']} on {metadata['hardware']} ({metadata['cpu_model']}), "
        f"batch {profile.batch_size}, {profile.cores} cores",
        f"latency model: {metadata['latency_model']}",
        f"{len(pruned)} of {len(plan.sparsities)} layers pruned; layers not listed stay dense.",
        "Override any variable below with recipe args, e.g. num_epochs=30.",
        *schedule_lines,
    ]
    text = render_recipe(pruned, recipe, metadata, header)
    expected = {name: (None if recipe.method == "constant" else value) for name, value in pruned.items()}
    validate_recipe(text, expected, model_layers)
    return text


def schedule_notes(recipe: RecipeSettings, profile: Profile, pruned: dict[str, float], metadata: dict) -> list[str]:
    """Header lines on what the schedule needs from training, recorded in ``metadata`` too. AC/DC: a
    whole-epoch update frequency (SparseML rounds it; SpdyError when that gives 0). M-FAC: the fewest
    steps per epoch that buffer ``num_grads`` gradients before every mask update (``emit.schedule``) and
    its memory, with a warning when that exceeds this machine's."""
    settings = recipe.resolved()
    if settings.method == "acdc" and round(settings.update_frequency) < 1:
        raise SpdyError(f"AC/DC updates masks every whole epoch, and an update frequency of "
                        f"{settings.update_frequency:g} epochs rounds to 0; give at least 0.5")
    if settings.method != "mfac":
        return []
    start, end = settings.pruning_start_fraction * settings.epochs, settings.pruning_end_fraction * settings.epochs
    steps = min_steps_per_epoch(start, end, settings.update_frequency, settings.epochs, settings.num_grads)
    if steps is None:
        raise SpdyError(f"M-FAC buffers num_grads={settings.num_grads} gradients before each mask update, and this "
                        f"schedule (pruning from epoch {start:g} to {end:g} every {settings.update_frequency:g}) "
                        "leaves no steps before its first one; start pruning later")
    shapes = {layer.name: layer.shape for layer in profile.layers}
    params = sum(math.prod(shapes[name]) for name in pruned)
    memory = mfac_memory_bytes(params, settings.num_grads, settings.fisher_block_size)
    metadata["min_steps_per_epoch"] = steps
    metadata["mfac_memory_gib"] = round(memory / 2**30, 3)
    available = _machine_memory()
    if available and memory > available:
        warn(f"M-FAC will need about {memory / 2**30:.1f} GiB for {params:,} pruned weights (num_grads "
             f"{settings.num_grads} + fisher_block_size {settings.fisher_block_size} floats each), more than this "
             f"machine's {available / 2**30:.1f} GiB; lower them with --recipe-args or use gmp/acdc")
    return [f"M-FAC: train at least {steps} steps per epoch (num_grads={settings.num_grads} gradients before every "
            f"mask update); it needs about {memory / 2**30:.2f} GiB."]


def _machine_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_recipe_path(path: Path) -> None:
    if path.suffix not in (".yaml", ".md"):
        raise SpdyError(f"recipe file {path} must end in .yaml or .md (SparseML rejects other names)")


def write_recipe(path: Path, text: str) -> None:
    """Atomically write a checked recipe."""
    check_recipe_path(path)
    atomic_write_text(path, text)
