"""Check a profile for real: prune one-shot, export, and time against dense in the engine; tighten if short."""

from .loop import Round, ShortOfTarget, meet_target, meets
from .measure import PlanTimer, SpeedupMeasurement
from .oneshot import magnitude_prune, weight_sparsity

__all__ = [
    "PlanTimer", "Round", "ShortOfTarget", "SpeedupMeasurement", "magnitude_prune", "meet_target", "meets",
    "weight_sparsity",
]
