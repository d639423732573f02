"""Check a rendered recipe by loading it with real SparseML and reading back every layer's target."""

from __future__ import annotations

import os
from typing import Any

from ..errors import SpdyError, first_line

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

_TARGET_FIELDS = ("final_sparsity", "compression_sparsity")
SPARSITY_EXACT = 1e-9  # a sparsity SparseML reads back equals the plan's within float printing


def recipe_targets(recipe: str, recipe_args: dict | None = None) -> tuple[dict[str, float | None], Any]:
    """Load ``recipe`` (text or path) with SparseML; return {layer: final sparsity} and the manager.

    Constant-pruning layers map to None (they keep whatever sparsity the weights already have).
    """
    from sparseml.pytorch.optim import ScheduledModifierManager

    try:
        manager = ScheduledModifierManager.from_yaml(recipe, recipe_variables=recipe_args)
    except Exception as exc:  # sparseml raises many types for a bad recipe
        reason = first_line(exc)
        raise SpdyError(f"SparseML cannot load the recipe: {reason}") from None
    targets: dict[str, float | None] = {}
    for modifier in manager.modifiers:
        params = getattr(modifier, "params", None)
        if params is None or type(modifier).__name__.endswith("LearningRateFunctionModifier"):
            continue
        value = next((getattr(modifier, f) for f in _TARGET_FIELDS if hasattr(modifier, f)), None)
        for name in [params] if isinstance(params, str) else params:
            if name in targets:
                raise SpdyError(f"recipe prunes layer {name!r} in two modifiers")
            targets[name] = value
    return targets, manager


def validate_recipe(text: str, expected: dict[str, float | None], model_layers: set[str]) -> None:
    """Raise SpdyError unless SparseML loads ``text`` and it targets exactly ``expected``.

    Every name must be a prunable layer of the model, every sparsity a float in (0, 1).
    """
    for name, value in expected.items():
        if name not in model_layers:
            raise SpdyError(f"recipe names layer {name!r}, which the model does not have")
        if value is not None and not (isinstance(value, float) and 0.0 < value < 1.0):
            raise SpdyError(f"layer {name!r} has sparsity {value!r}, outside (0, 1)")
    loaded, _ = recipe_targets(text)
    if set(loaded) != set(expected):
        extra, missing = sorted(set(loaded) - set(expected)), sorted(set(expected) - set(loaded))
        raise SpdyError(f"recipe layers differ from the plan (extra {extra[:3]}, missing {missing[:3]})")
    for name, value in expected.items():
        got = loaded[name]
        if (value is None) != (got is None) or (value is not None and got is not None
                                                    and abs(float(got) - value) > SPARSITY_EXACT):
            raise SpdyError(f"recipe gives layer {name!r} sparsity {got!r}, the plan {value!r}")
