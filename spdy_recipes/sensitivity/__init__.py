"""Per-layer, per-level error estimates that the solver minimises."""

from .prior import prior_errors
from .table import load_sensitivity

__all__ = ["load_sensitivity", "prior_errors"]
