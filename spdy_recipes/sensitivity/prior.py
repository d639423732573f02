"""SPDY's error prior: level i of n costs (i / (n - 1))^2, the same for every layer.

The sensitivities SPDY's local search learns (Frantar & Alistarh, "SPDY: Accurate Pruning with Speedup
Guarantees", ICML 2022: the paper's second technique, a local search over layer-wise sensitivity scores) are one
coefficient per layer scaling this row; the quadratic form is the one of the authors' code (IST-DASLab/spdy).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def prior_errors(num_layers: int, num_levels: int,
                 coefficients: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
    """A (``num_layers`` x ``num_levels``) error table, unitless; ``coefficients`` (shape (``num_layers``,))
    scale each layer's row (SPDY's search variables; None: all 1)."""
    row = (np.arange(num_levels) / max(num_levels - 1, 1)) ** 2
    table = np.tile(row, (num_layers, 1))
    if coefficients is not None:
        table = table * np.asarray(coefficients, dtype=float)[:, None]
    return table
