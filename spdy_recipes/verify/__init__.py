"""Check a profile for real: prune one-shot, export, and time against dense in the engine."""

from .measure import SpeedupMeasurement, measure_speedup
from .oneshot import magnitude_prune, weight_sparsity

__all__ = ["SpeedupMeasurement", "magnitude_prune", "measure_speedup", "weight_sparsity"]
