"""Sensitivity tables on disk: measured error of each layer at each grid level.

JSON: ``{"format": "spdy-recipes/sensitivity", "format_version": 1, "grid": [...],
"errors": {"<layer name>": [error per grid level, ...]}}``; errors are finite and non-negative.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import SpdyError
from ..files import read_json

FORMAT = "spdy-recipes/sensitivity"


def load_sensitivity(path: str | Path, layer_names: list[str], grid: list[float]) -> np.ndarray:
    """Read a sensitivity table and return its (layers x levels) errors in ``layer_names`` order."""
    path = Path(path)
    data = read_json(path, "sensitivity table")
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("errors"), dict):
        raise SpdyError(f"malformed sensitivity table {path}: not a {FORMAT} file with an 'errors' object")
    if [round(float(s), 4) for s in data.get("grid", [])] != [round(s, 4) for s in grid]:
        raise SpdyError(f"sensitivity table {path} was made on another sparsity grid than the profile")
    missing = [name for name in layer_names if name not in data["errors"]]
    if missing:
        raise SpdyError(f"sensitivity table {path} lacks layer(s) {', '.join(missing[:5])}")
    rows = []
    for name in layer_names:
        row = data["errors"][name]
        if (not isinstance(row, list) or len(row) != len(grid)
                or not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in row)):
            raise SpdyError(f"malformed sensitivity table {path}: layer {name!r} needs {len(grid)} finite errors >= 0")
        rows.append([float(v) for v in row])
    return np.array(rows)
