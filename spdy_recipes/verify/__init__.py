"""Check a plan for real: prune one-shot, export, and time against dense in the engine; re-solve until it meets."""

from .loop import MachineTooBusy, Round, ShortOfTarget, Verified, meet_target, meets
from .measure import PlanTimer, SpeedupMeasurement
from .trained import SPARSITY_TOLERANCE, check_trained_sparsity, load_trained

__all__ = [
    "SPARSITY_TOLERANCE", "MachineTooBusy", "PlanTimer", "Round", "ShortOfTarget", "SpeedupMeasurement", "Verified",
    "check_trained_sparsity", "load_trained", "meet_target", "meets",
]
