"""Close the loop: measure a solved plan, and tighten the budget until the measurement meets the target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import SpdyError
from ..solve import Plan
from .measure import PlanTimer, SpeedupMeasurement

TIGHTEN_MARGIN = 0.005  # aim this much above the target when re-solving after a shortfall


@dataclass(frozen=True)
class Round:
    """One measured plan."""

    plan: Plan
    measurement: SpeedupMeasurement

    def describe(self) -> str:
        return (f"solved for {self.plan.solve_speedup:.3f}x: predicted {self.plan.predicted_speedup:.3f}x, "
                f"measured {self.measurement.speedup:.3f}x (dense {self.measurement.dense_ms:.2f} ms, "
                f"pruned {self.measurement.pruned_ms:.2f} ms)")


def meets(measured: float, target: float, tolerance: float) -> bool:
    return measured >= target * (1.0 - tolerance)


def tightened(solve_speedup: float, target: float, measured: float) -> float:
    """The next speedup to solve for: scaled by the shortfall, plus a small margin."""
    return solve_speedup * (target / measured) * (1.0 + TIGHTEN_MARGIN)


def meet_target(
    solve_for: Callable[[float], Plan],
    timer: PlanTimer,
    target: float,
    tolerance: float,
    max_rounds: int,
    log: Callable[[str], None],
    first: Round | None = None,
) -> list[Round]:
    """Solve, measure, and re-solve tighter until the measured speedup meets ``target``.

    Returns every round (the last one meets the target); raises SpdyError naming the best measurement
    when ``max_rounds`` pass or the tightened target becomes infeasible.
    """
    rounds = [first] if first else []
    solve_speedup = target
    while True:
        if rounds:
            last = rounds[-1]
            if meets(last.measurement.speedup, target, tolerance):
                return rounds
            if len(rounds) >= max_rounds:
                break
            solve_speedup = tightened(last.plan.solve_speedup, target, last.measurement.speedup)
            log(f"[verify] short of {target:.3f}x; re-solving for {solve_speedup:.3f}x")
        try:
            plan = solve_for(solve_speedup)
        except SpdyError as exc:
            best = max((r.measurement.speedup for r in rounds), default=0.0)
            raise SpdyError(f"cannot meet {target:.3f}x on this machine: best measured {best:.3f}x; {exc}") from None
        rounds.append(Round(plan, timer.measure(plan.pruned)))
        log(f"[verify] round {len(rounds)}: {rounds[-1].describe()}")
    best = max(r.measurement.speedup for r in rounds)
    raise SpdyError(f"measured speedup stays below {target:.3f}x after {max_rounds} round(s) "
                    f"(best {best:.3f}x); raise --max-rounds or lower --speedup")
