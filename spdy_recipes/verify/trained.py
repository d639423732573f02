"""Check a trained model against its recipe: every layer's sparsity must equal the recipe's target."""

from __future__ import annotations

import copy

from ..errors import SpdyError, warn
from ..models import ModelBundle
from ..models.oneshot import weight_sparsity
from ..models.weights import load_weights

SPARSITY_TOLERANCE = 0.005  # a layer within half a percent of its target has reached it


def load_trained(bundle: ModelBundle, weights: str) -> ModelBundle:
    """A copy of ``bundle`` holding the trained ``weights`` (the bundle itself stays the dense baseline)."""
    trained = copy.deepcopy(bundle)
    load_weights(trained.module, weights, warn=warn)
    return trained


def check_trained_sparsity(trained: ModelBundle, targets: dict[str, float]) -> dict[str, float]:
    """Every recipe layer's sparsity in ``trained``; raise naming the layers off target by more than the tolerance."""
    reached = weight_sparsity(trained.module, list(targets))
    missed = [name for name, target in targets.items() if abs(reached[name] - target) > SPARSITY_TOLERANCE]
    if missed:
        shown = ", ".join(f"{name} {reached[name]:.4f} (target {targets[name]:.4f})" for name in missed[:3])
        raise SpdyError(f"the trained weights miss the recipe's sparsity on {len(missed)} of {len(targets)} "
                        f"layers: {shown}" + (" ..." if len(missed) > 3 else ""))
    return reached
