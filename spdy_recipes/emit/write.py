"""The recipe for a plan as SparseML reads it: header, schedule notes, metadata, checked layer by layer by
SparseML itself, and written atomically."""

from __future__ import annotations

import math
import os
from pathlib import Path

from .. import __version__
from ..deployment import FP32
from ..errors import SpdyError, warn
from ..files import atomic_write_text, check_parent_folders
from ..profile import Profile
from ..profile.correction import EnginePoint
from ..solve import Plan
from ..solve.settings import SolveSettings
from .metadata import recipe_metadata
from .recipe import RecipeSettings, render_recipe
from .schedule import mfac_memory_bytes, min_steps_per_epoch
from .validate import validate_recipe


def render_checked_recipe(
    plan: Plan, profile: Profile, profile_path: Path, recipe: RecipeSettings, settings: SolveSettings,
    model_layers: set[str], measured: dict | None = None, search: dict | None = None,
    points: tuple[EnginePoint, ...] = (),
) -> str:
    """The recipe text for ``plan``, loaded with SparseML and checked layer by layer (``points``: see
    ``recipe_metadata``; an unset ``recipe.init_lr``: the profile's model's default, ``default_init_lr``)."""
    pruned = plan.pruned
    if not pruned:
        if profile.baseline_ratio > 1 and plan.target_speedup <= profile.baseline_ratio:
            raise SpdyError(f"dense INT8 alone runs {profile.baseline_ratio:.2f}x dense fp32 here, beyond the "
                            f"{plan.target_speedup:.3f}x target: quantize without pruning (or ask a higher target)")
        raise SpdyError("the solved profile prunes no layer; nothing to write")
    recipe = recipe.for_model(profile.model["spec"])  # an unset init_lr: the model's default
    metadata = recipe_metadata(profile, profile_path, plan, recipe.method, settings, measured, search, points)
    schedule_lines = schedule_notes(recipe, profile, pruned, metadata)
    deployment = profile.deployment.resolved()
    over = "" if deployment == FP32 else f" over dense {profile.baseline}"
    header = [
        f"SPDY recipe by spdy-recipes {__version__} for {profile.model['spec']} ({recipe.method}"
        + ("" if deployment == FP32 else f", {deployment.label}") + ")",
        f"target {plan.target_speedup:.3f}x{over}, predicted {plan.predicted_speedup:.3f}x in "
        f"{metadata['engine']} on {metadata['hardware']} ({metadata['cpu_model']}), "
        f"batch {profile.batch_size}, {profile.cores} cores",
        *_precision_lines(profile, plan, metadata),
        f"latency model: {metadata['latency_model']}",
        f"{len(pruned)} of {len(plan.sparsities)} layers pruned; layers not listed stay dense.",
        "Override any variable below with recipe args, e.g. num_epochs=30.",
        *schedule_lines,
    ]
    text = render_recipe(pruned, recipe, metadata, header, deployment)
    expected = {name: (None if recipe.method == "constant" else value) for name, value in pruned.items()}
    validate_recipe(text, expected, model_layers)
    return text


def _precision_lines(profile: Profile, plan: Plan, metadata: dict) -> list[str]:
    """For an INT8 recipe: the predicted speedup over both dense models (fp32: what the user runs today; INT8:
    what quantization alone gives), with INT8's own measured gain and the layers left in fp32."""
    if profile.deployment.resolved().precision != "int8":
        return []
    gain = profile.int8_gain
    own = f"{profile.int8_gain_label()}; " if gain else ""
    over_int8 = metadata["predicted_speedup_over_int8"]
    over_fp32 = (plan.predicted_speedup if profile.baseline == "fp32"
                 else over_int8 * gain[0] if gain else None)
    left = profile.model.get("left_fp32") or []
    return [f"INT8 with {profile.deployment.resolved().mask_type} pruning: {own}predicted "
            + (f"{over_fp32:.3f}x over dense fp32, " if over_fp32 is not None else "")
            + f"{over_int8:.3f}x over dense INT8"
            + (f"; left in fp32: {', '.join(left[:4])}" + (" ..." if len(left) > 4 else "") if left else "")]


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
    if path.suffix != ".yaml" or str(path).endswith(("/", "\\")):
        raise SpdyError(f"recipe file {path} must end in .yaml (SparseML rejects other names, and reads a .md "
                        "recipe card only with YAML front matter, which this tool does not write)")
    check_parent_folders(path, "the recipe")


def write_recipe(path: Path, text: str) -> None:
    """Atomically write a checked recipe."""
    check_recipe_path(path)
    atomic_write_text(path, text)
