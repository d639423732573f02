"""Sparsity grids: the levels every layer may take, dense first."""

from __future__ import annotations

from itertools import pairwise

from ..errors import SpdyError

GRID_DECIMALS = 4


def spdy_grid(levels: int = 42, lowest: float = 0.4, highest: float = 0.99) -> list[float]:
    """SPDY's grid: dense plus ``levels - 1`` sparsities geometric in density from ``lowest`` to ``highest``."""
    if levels < 2:
        raise SpdyError(f"a grid needs at least 2 levels, got {levels}")
    steps = levels - 2
    if steps == 0:
        return [0.0, round(lowest, GRID_DECIMALS)]
    ratio = ((1.0 - highest) / (1.0 - lowest)) ** (1.0 / steps)
    sparse = [round(1.0 - (1.0 - lowest) * ratio**i, GRID_DECIMALS) for i in range(steps + 1)]
    return [0.0] + sparse


def parse_grid(text: str) -> list[float]:
    """Parse ``spdy``, ``spdy:N`` or a comma list such as ``0,0.5,0.7,0.9`` into a validated grid."""
    text = text.strip()
    if text == "spdy":
        return spdy_grid()
    if text.startswith("spdy:"):
        try:
            return spdy_grid(int(text[5:]))
        except ValueError:
            raise SpdyError(f"bad grid {text!r}: expected spdy:N with an integer N") from None
    try:
        values = [round(float(part), GRID_DECIMALS) for part in text.split(",")]
    except ValueError:
        raise SpdyError(f"bad grid {text!r}: expected 'spdy', 'spdy:N' or numbers like 0,0.5,0.9") from None
    return validate_grid(values)


def validate_grid(values: list[float]) -> list[float]:
    """Check that a grid starts dense, increases strictly and stays below 1."""
    if not values or values[0] != 0.0:
        raise SpdyError("a sparsity grid must start with 0 (dense)")
    for low, high in pairwise(values):
        if not low < high:
            raise SpdyError(f"a sparsity grid must increase strictly, got {low} then {high}")
    if values[-1] >= 1.0:
        raise SpdyError(f"sparsity grid values must be below 1, got {values[-1]}")
    return list(values)
