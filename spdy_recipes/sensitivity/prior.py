"""SPDY's error prior: level i of n costs (i / (n - 1))^2, the same for every layer."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def prior_errors(num_layers: int, num_levels: int,
                 coefficients: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
    """A (layers x levels) error table; ``coefficients`` scale each layer's row (SPDY's search variables)."""
    row = (np.arange(num_levels) / max(num_levels - 1, 1)) ** 2
    table = np.tile(row, (num_layers, 1))
    if coefficients is not None:
        table = table * np.asarray(coefficients, dtype=float)[:, None]
    return table
