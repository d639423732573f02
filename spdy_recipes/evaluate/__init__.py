"""Evaluate: SPDY against the baselines at equal speed (predicted, or measured in the engine), loss on data.

Every method's sparsities are applied one-shot the same way: magnitude masks, and with the ``obs``
database the kept weights re-fitted layer-wise on the calibration data (SPDY takes its levels from the
database, the baselines are re-fitted at their own sparsities), then optionally a global re-fit of all
kept weights against the dense model. Losses are the search's calibration loss and distillation to
dense on the held-out data, which the search never sees (with its top-1 against the labels where it
has labels). Measured speedups carry their 95% interval; ``speed_note`` says which methods' speeds
differ by more than that noise.
"""

from .matching import Allocation, at_predicted_speed, baseline_at, matched_allocations
from .results import MethodResult, OneShot, evaluate_allocations, format_results, speed_note

__all__ = ["Allocation", "MethodResult", "OneShot", "at_predicted_speed", "baseline_at", "evaluate_allocations",
           "format_results", "matched_allocations", "speed_note"]
