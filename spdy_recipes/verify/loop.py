"""Close the loop: measure a solved plan here, learn from the measurement, and re-solve until it meets the target.

Each round prunes the model to the plan, times it against dense, and analyses it: every layer's time
inside this mixed-sparsity model replaces the uniform-sparsity table entry for that layer and level
(fusion and kernel choices change when neighbours differ). The next plan is solved on the corrected
table; whatever shortfall the corrections do not explain (per-call costs, noise) tightens the target.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..errors import SpdyError
from ..solve import Plan
from ..solve.planner import Context
from .measure import PlanTimer, SpeedupMeasurement

TIGHTEN_MARGIN = 0.005  # aim this much above what a shortfall calls for
BUSY_LIMIT = 0.25  # other processes' share of the machine's CPU above which a measurement is not used
MODEL_ERROR = 0.15  # |predicted/measured - 1| beyond which a measurement is taken again before it is used
MEASURE_TRIES = 3  # measurements of one plan at most while the machine is busy
BUSY_WAIT_S = 3.0  # pause before measuring again on a busy machine (times the attempt)


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


class MachineTooBusy(ShortOfTarget):
    """Every measurement of a plan ran while other processes used much of the CPU."""


def trusted_measurement(timer: PlanTimer, sparsities: dict[str, float], predicted: float,
                        log: Callable[[str], None], rounds: list[Round]) -> tuple[SpeedupMeasurement, dict[str, float]]:
    """Measure the plan (speedup and in-context layer times) until the measurement can be acted upon.

    A measurement taken while other processes used more than ``BUSY_LIMIT`` of the CPU is taken again after a
    pause, ``MEASURE_TRIES`` times at most, then MachineTooBusy is raised. A clean measurement that disagrees
    with ``predicted`` by more than the latency model's known error (``MODEL_ERROR``) is taken once more, and
    the second one is used (it confirms or corrects the first).
    """
    pruned_onnx, disagreed = timer.export_pruned(sparsities), False
    for attempt in range(1, MEASURE_TRIES + 1):
        measurement = timer.measure_onnx(pruned_onnx)
        busy = measurement.busy or 0.0
        if busy > BUSY_LIMIT:
            if attempt == MEASURE_TRIES:
                raise MachineTooBusy(
                    f"machine too busy: other processes used {busy:.0%} of the CPU while the pruned model was "
                    f"measured ({MEASURE_TRIES} tries, limit {BUSY_LIMIT:.0%}); run again when it is quiet", rounds)
            log(f"[verify] measured {measurement.describe()} while other processes used {busy:.0%} of the CPU; "
                f"measuring again in {BUSY_WAIT_S * attempt:.0f} s")
            time.sleep(BUSY_WAIT_S * attempt)
            continue
        off = predicted / measurement.speedup - 1
        if abs(off) > MODEL_ERROR and not disagreed:
            disagreed = True
            log(f"[verify] measured {measurement.describe()} against {predicted:.3f}x predicted ({off:+.0%}, beyond "
                f"the model's known error of {MODEL_ERROR:.0%}); measuring again before acting on it")
            continue
        break  # (after a disagreement, the re-measurement is used even on the last try)
    return measurement, timer.in_context_times(pruned_onnx)


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
        predicted = plan.predicted_speedup / unexplained
        measurement, in_context = trusted_measurement(timer, plan.sparsities, predicted, log, rounds)
        rounds.append(Round(plan, measurement, predicted))
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
