"""Check a trained model against its recipe: every layer's sparsity must equal the recipe's target."""

from __future__ import annotations

import copy

from ..errors import SpdyError, warn
from ..models import ModelBundle
from ..models.oneshot import weight_sparsity
from ..models.weights import load_weights

SPARSITY_TOLERANCE = 0.005  # a layer within half a percent of its target has reached it


def load_trained(bundle: ModelBundle, weights: str, quantized_by: str | None = None) -> ModelBundle:
    """A copy of ``bundle`` holding the trained ``weights`` (the bundle itself stays the dense baseline).

    ``quantized_by``: the INT8 recipe (path) the weights were trained with; its quantization structure is applied
    first (``models.quantize.apply_quantization_structure``) so that the weights saved after quantization-aware
    training load with their trained scales and zero points. Raises SpdyError when the weights cannot be read or
    do not fit, and when an INT8 recipe's weights hold no quantization (its quantization-aware epochs did not
    run)."""
    from ..models.quantize import apply_quantization_structure, holds_quantization
    from ..models.weights import read_state_dict

    trained = copy.deepcopy(bundle)
    if quantized_by is not None:
        if not holds_quantization(read_state_dict(weights)):
            raise SpdyError(f"weights {weights!r} hold no quantization: the INT8 recipe's quantization-aware "
                            f"epochs did not run on them (train through the recipe's last epoch)")
        apply_quantization_structure(trained.module, quantized_by)
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
