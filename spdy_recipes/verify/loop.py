"""Close the loop: measure a solved plan here, learn from the measurement, and re-solve until it meets the target.

Each round prunes the model to the plan, times it against dense, and analyses it: every layer's time
inside this mixed-sparsity model replaces the uniform-sparsity table entry for that layer and level
(fusion and kernel choices change when neighbours differ). The next plan is solved on the corrected
table; whatever shortfall the corrections do not explain (per-call costs, noise) tightens the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import SpdyError
from ..solve import Plan
from ..solve.planner import Context
from .measure import PlanTimer, SpeedupMeasurement

TIGHTEN_MARGIN = 0.005  # aim this much above what a shortfall calls for


@dataclass(frozen=True)
class Round:
    """One measured plan, and the speedup predicted for it before measuring (on the corrected table,
    divided by the end-to-end shortfall that earlier rounds left unexplained)."""

    plan: Plan
    measurement: SpeedupMeasurement
    predicted_speedup: float

    def describe(self) -> str:
        return (f"solved for {self.plan.solve_speedup:.3f}x: predicted {self.predicted_speedup:.3f}x, "
                f"measured {self.measurement.describe()} (dense {self.measurement.dense_ms:.2f} ms, "
                f"pruned {self.measurement.pruned_ms:.2f} ms{self.measurement.load_note()})")


class ShortOfTarget(SpdyError):
    """The target was not met; ``rounds`` holds every measured round."""

    def __init__(self, message: str, rounds: list[Round]) -> None:
        super().__init__(message)
        self.rounds = rounds


def meets(measured: float, target: float, tolerance: float) -> bool:
    return measured >= target * (1.0 - tolerance)


def corrected_speedup(plan: Plan, in_context: dict[str, float]) -> float:
    """What the table predicts for ``plan`` once its entries are replaced by in-context times."""
    corrected_ms = plan.predicted_ms + sum(in_context[name] - plan.times_ms[name] for name in plan.times_ms)
    return plan.dense_ms / corrected_ms


def next_solve_speedup(round_: Round, in_context: dict[str, float], target: float, repeated_plan: bool) -> float:
    """The speedup to solve for next: the target scaled by the shortfall the corrected table does not
    explain, never below the last one; when the corrections changed nothing, scaled by the whole shortfall."""
    measured, last = round_.measurement.speedup, round_.plan.solve_speedup
    if repeated_plan:
        return last * (target / measured) * (1.0 + TIGHTEN_MARGIN)
    unexplained = max(1.0, corrected_speedup(round_.plan, in_context) / measured)
    return max(last, target * unexplained * (1.0 + TIGHTEN_MARGIN))


def meet_target(
    solve_for: Callable[[float, Context], Plan],
    timer: PlanTimer,
    target: float,
    tolerance: float,
    max_rounds: int,
    log: Callable[[str], None],
    first: Plan,
) -> list[Round]:
    """Measure ``first`` and re-solve on corrected tables until the measured speedup meets ``target``.

    Returns every round (the last one meets the target); raises SpdyError naming the best measurement
    when ``max_rounds`` pass or the tightened target becomes infeasible.
    """
    context: dict[str, dict[int, float]] = {}
    plan, rounds, seen, unexplained = first, [], set(), 1.0
    while True:
        measurement, in_context = timer.measure_in_context(plan.sparsities)
        rounds.append(Round(plan, measurement, plan.predicted_speedup / unexplained))
        seen.add(_key(plan))
        log(f"[verify] round {len(rounds)}: {rounds[-1].describe()}")
        if meets(measurement.speedup, target, tolerance):
            return rounds
        best = max(r.measurement.speedup for r in rounds)
        if len(rounds) >= max_rounds:
            raise ShortOfTarget(f"measured speedup stays below {target:.3f}x after {len(rounds)} round(s) "
                                f"(best {best:.3f}x); raise --max-rounds or lower --speedup", rounds)
        for name, level in plan.levels.items():
            context.setdefault(name, {})[level] = in_context[name]
        unexplained = corrected_speedup(plan, in_context) / measurement.speedup
        solve_speedup = next_solve_speedup(rounds[-1], in_context, target, repeated_plan=False)
        try:
            plan = _solve_within_reach(solve_for, solve_speedup, context, target)
            if _key(plan) in seen:
                solve_speedup = next_solve_speedup(rounds[-1], in_context, target, repeated_plan=True)
                plan = _solve_within_reach(solve_for, solve_speedup, context, target)
        except SpdyError as exc:
            raise ShortOfTarget(f"cannot meet {target:.3f}x on this machine: best measured {best:.3f}x; {exc}",
                                rounds) from None
        if _key(plan) in seen:
            raise ShortOfTarget(f"cannot meet {target:.3f}x on this machine: best measured {best:.3f}x, and the "
                                f"fastest plan the corrected profile allows was already measured", rounds)
        log(f"[verify] short of {target:.3f}x; re-solving for {solve_speedup:.3f}x on {plan.corrections} "
            f"in-context time(s)")


def _key(plan: Plan) -> tuple:
    return tuple(sorted(plan.levels.items()))


def _solve_within_reach(solve_for: Callable[[float, Context], Plan], speedup: float, context: Context,
                        target: float) -> Plan:
    """Solve for ``speedup``; when that is beyond the corrected table's reach, the fastest plan there is
    (it may still measure up to ``target``)."""
    try:
        return solve_for(speedup, context)
    except SpdyError:
        best = solve_for(target, context).max_speedup
        return solve_for(best * (1 - 1e-9), context)
