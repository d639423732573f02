"""Close the loop: measure a solved plan here, learn from it, and re-solve until the measurement meets the
target without overshooting it.

Every measured plan is one more calibration point of the profile (``Profile.with_engine_points``): the
correction of its table is refitted, and the next plan is solved on the refitted table. The loop steers by
the refitted table's predicted speedup of each plan, treating the measured speedup as a monotone function of
it and bracketing from both sides: tighten (aim higher) after a shortfall, relax (aim lower) after an
overshoot, interpolating between the closest measurements on either side. The first plan aims its
prediction just above the target (``AIM`` plus the measurement's precision). It ends on the least-pruned
measured plan that meets the target.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import SpdyError
from ..profile import Profile
from ..profile.correction import EnginePoint
from ..profile.engine import TimingRule
from ..solve import Plan
from .bracket import next_aim
from .measure import PlanTimer, SpeedupMeasurement

OVERSHOOT = 0.05  # a plan measured above target x (1 + OVERSHOOT) prunes more than needed: relax
AIM = 0.01  # the loop aims the lower end of the next measurement's interval at target x (1 + AIM)
BUSY_LIMIT = 0.25  # other processes' share of the machine's CPU above which a measurement is not used
MODEL_ERROR = 0.2  # |predicted/measured - 1| beyond which a measurement is taken again before it is used
# (benchmarks/latency_model.py: uncalibrated profiles off by up to 16% on MobileNetV2 and ResNet18 on AVX2)
MEASURE_TRIES = 3  # measurements of one plan at most while the machine is busy
BUSY_WAIT_S = 3.0  # pause before measuring again on a busy machine (times the attempt)
NUDGE = 0.03  # when the DP returns a plan already measured and nothing brackets it, move the aim this much
NUDGES = 4  # and at most this often per round
PREDICTION_STEPS = 10  # solves at most to bring a plan's predicted speedup to the one aimed at
PREDICTION_MATCH = 0.005  # close enough: |predicted / aimed - 1|
REACH = 1 - 1e-6  # a solve just inside the profile's fastest plan (the DP needs a budget it can meet)
REACH_PROBE = 1e-3  # a solve speedup every profile meets: its plan tells the profile's reach
FIRST_AIM = 1 + AIM + TimingRule.precision  # the first plan's predicted speedup, over the target

Solver = Callable[[Profile, "float | None"], Plan]  # (profile, solve speedup or None: the target) -> plan
LevelsKey = tuple[tuple[str, int], ...]  # a plan's (layer, grid level) pairs, sorted: which plans are the same


@dataclass(frozen=True)
class Round:
    """One measured plan, the speedup predicted for it before measuring (on the table it was solved on:
    the profile refitted on ``points``, the rounds measured before it), and the measurement."""

    plan: Plan
    measurement: SpeedupMeasurement
    points: tuple[EnginePoint, ...] = ()

    @property
    def predicted_speedup(self) -> float:
        return self.plan.predicted_speedup

    def describe(self) -> str:
        return (f"predicted {self.predicted_speedup:.3f}x (solved for {self.plan.solve_speedup:.3f}x), "
                f"measured {self.measurement.describe()} (dense {self.measurement.dense_ms:.2f} ms, "
                f"pruned {self.measurement.pruned_ms:.2f} ms{self.measurement.load_note()})")


@dataclass(frozen=True)
class Verified:
    """Every measured round, and the one chosen: the least-pruned (lowest measured speedup) that meets."""

    rounds: list[Round]
    final: Round
    layer_ms: dict[str, float] | None = None  # the final plan's layers in context (PlanTimer.layer_times), if analysed


def engine_point(profile: Profile, plan: Plan, measurement: SpeedupMeasurement) -> EnginePoint:
    """A measured plan as a calibration point of ``profile`` (kind ``verify``): its speedup over the profile's
    own dense model (measured over the baseline, divided by ``Profile.baseline_ratio``)."""
    ratio = profile.baseline_ratio
    low = measurement.low if measurement.low is not None else measurement.speedup
    high = measurement.high if measurement.high is not None else measurement.speedup
    return EnginePoint(levels=tuple(plan.levels[name] for name in profile.layer_names),
                       speedup=measurement.speedup / ratio, low=low / ratio, high=high / ratio,
                       dense_ms=measurement.dense_ms / ratio, pruned_ms=measurement.pruned_ms, kind="verify")


class ShortOfTarget(SpdyError):
    """The target was not met; ``rounds`` holds every measured round."""

    def __init__(self, message: str, rounds: list[Round]) -> None:
        super().__init__(message)
        self.rounds = rounds


class MachineTooBusy(ShortOfTarget):
    """Every measurement of a plan ran while other processes used much of the CPU."""


def meets(measurement: SpeedupMeasurement, target: float, tolerance: float = 0.0) -> bool:
    """Whether the measurement meets ``target x (1 - tolerance)``, judged on the lower end of its
    confidence interval when known (so that an independent re-measure agrees)."""
    low = measurement.low if measurement.low is not None else measurement.speedup
    return low >= target * (1.0 - tolerance)


def overshoots(measurement: SpeedupMeasurement, target: float) -> bool:
    """Whether the plan is clearly faster than asked: its median above ``target x (1 + OVERSHOOT)``."""
    return measurement.speedup > target * (1.0 + OVERSHOOT)


def trusted_measurement(timer: PlanTimer, sparsities: dict[str, float], predicted: float,
                        log: Callable[[str], None], rounds: list[Round]) -> SpeedupMeasurement:
    """Measure the plan until the measurement can be acted upon.

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
    return measurement


def _low(measurement: SpeedupMeasurement) -> float:
    """The lower end of the measured interval (the median where unknown): what the loop steers."""
    return measurement.low if measurement.low is not None else measurement.speedup


def meet_target(
    solve_for: Solver,
    timer: PlanTimer,
    target: float,
    tolerance: float,
    max_rounds: int,
    log: Callable[[str], None],
    profile: Profile,
    first: Plan | None = None,
    first_measurement: SpeedupMeasurement | None = None,
    fallback: Solver | None = None,
    points: tuple[EnginePoint, ...] = (),
) -> Verified:
    """Measure a plan, refit ``profile`` on it, and re-solve (``solve_for(refitted profile, solve_speedup)``)
    until a measurement meets ``target`` (``meets``) without overshooting it by more than ``OVERSHOOT``,
    ``max_rounds`` measurements at most.

    The first plan is ``first``, else the one whose predicted speedup is ``FIRST_AIM`` above the target.
    Returns every round and the final one: the first round inside the window, else the least-pruned
    measured plan that meets the target (when the plans between were never found). Raises ShortOfTarget
    naming the best measurement when no measured plan meets the target, MachineTooBusy when the machine
    stays busy. ``first_measurement``, when given, is ``first``'s measurement already taken. ``fallback``
    (e.g. ``solve.settings.uniform_solver``) is another family of plans, bracketed the same way with the rounds
    left, when no plan has met and a tighter plan would go beyond the profile's reach. ``points``: plans
    measured before (calibration points of the verification).
    """
    learnt = list(points)
    current = profile.refitted(learnt)
    if first is None:
        first = solve_for_prediction(solve_for, current, target * FIRST_AIM)[0]
    plan, plan_points = first, tuple(learnt)
    rounds: list[Round] = []
    seen: set[LevelsKey] = set()
    while True:
        if first_measurement is not None and not rounds:
            measurement = first_measurement
        else:
            measurement = trusted_measurement(timer, plan.sparsities, plan.predicted_speedup, log, rounds)
        rounds.append(Round(plan, measurement, plan_points))
        seen.add(_key(plan))
        learnt.append(engine_point(profile, plan, measurement))
        log(f"[verify] round {len(rounds)}: {rounds[-1].describe()}")
        if meets(measurement, target, tolerance) and not overshoots(measurement, target):
            return Verified(rounds, rounds[-1])
        if len(rounds) >= max_rounds:
            return _settle(rounds, target, tolerance, f"after {len(rounds)} round(s); raise --max-rounds")
        current = profile.refitted(learnt)  # (only when another plan is to be solved)
        try:
            plan = _next_plan(solve_for, current, rounds, target, tolerance, seen)
        except SpdyError as exc:
            why = "the fastest plan the profile allows was measured" if isinstance(exc, _BeyondReach) else str(exc)
            unsure = _unsure(rounds, target, tolerance)
            if unsure is not None:  # no other plan to try, but this one may meet: measure it again
                plan, plan_points = unsure.plan, unsure.points
                seen.discard(_key(plan))
                log(f"[verify] {why}; measuring the plan predicted at {plan.predicted_speedup:.3f}x again, its "
                    f"median {unsure.measurement.speedup:.3f}x meets {target:.3f}x but its interval does not")
                continue
            if not isinstance(exc, _BeyondReach):
                return _settle(rounds, target, tolerance, why)
            if fallback is not None and not any(meets(r.measurement, target, tolerance) for r in rounds):
                log(f"[verify] SPDY's plans fall short of {target:.3f}x here; bracketing uniform plans (every "
                    f"selected layer at one level) instead")
                return _fall_back(fallback, timer, target, tolerance, max_rounds, log, profile, rounds)
            plan = _solve_within_reach(solve_for, current, math.inf)
            if _key(plan) in seen:
                return _settle(rounds, target, tolerance, why)
        plan_points = tuple(learnt)
        short = not meets(measurement, target, tolerance)
        log(f"[verify] {'short of' if short else 'well above'} {target:.3f}x; "
            f"{'tightening' if short else 'relaxing'} on the table refitted to {len(learnt)} measured plan(s): "
            f"the plan predicted at {plan.predicted_speedup:.3f}x (solved for {plan.solve_speedup:.3f}x)")


class _BeyondReach(SpdyError):
    """A tighter plan would go beyond the profile's fastest plan."""


def _next_plan(solve_for: Solver, profile: Profile, rounds: list[Round], target: float, tolerance: float,
               seen: set[LevelsKey]) -> Plan:
    """The next plan to measure on the refitted ``profile``: predicted where ``next_aim`` says, moved away
    from a plan already measured (halfway up to the least-pruned plan that met when that one was short, halfway
    down to the most-pruned one that fell short when it met; by ``NUDGE`` without one); raises _BeyondReach when
    that is beyond the profile's reach and no plan met yet, SpdyError when no unmeasured plan lies between
    the measured ones or the plan there prunes no layer."""
    marks = [(profile.predicted_speedup(r.plan.levels), _low(r.measurement), meets(r.measurement, target, tolerance))
             for r in rounds]
    wanted = next_aim(marks, target * (1.0 + AIM))
    met = any(m for _, _, m in marks)
    low = max((x for x, _, m in marks if not m), default=0.0)
    high = min((x for x, _, m in marks if m), default=math.inf)
    by_key = {_key(r.plan): r for r in rounds}
    for _ in range(NUDGES):
        if not low < wanted < high:
            break
        plan, beyond = solve_for_prediction(solve_for, profile, wanted)
        if beyond and not met:
            raise _BeyondReach()
        if not plan.pruned:  # relaxed so far that nothing is pruned: no recipe, and no faster than dense
            raise SpdyError(f"the plan predicted at {wanted:.3f}x prunes no layer")
        if _key(plan) not in seen:
            return plan
        if not meets(by_key[_key(plan)].measurement, target, tolerance):  # measured short: aim higher
            wanted = math.sqrt(wanted * high) if high < math.inf else wanted * (1 + NUDGE)
        else:
            wanted = math.sqrt(wanted * low) if low > 0 else wanted / (1 + NUDGE)
    raise SpdyError("every plan the profile gives between the measured ones was measured already")


def solve_for_prediction(solve_for: Solver, profile: Profile, wanted: float) -> tuple[Plan, bool]:
    """The least-pruned plan whose predicted speedup on ``profile`` reaches ``wanted`` (within
    ``PREDICTION_MATCH``), and whether ``wanted`` is beyond the profile's reach (then the fastest plan).

    The predicted speedup grows with the speedup the DP is solved for, in steps: the solve speedup is
    bracketed (between a solve every profile meets and the profile's reach) and narrowed in log space,
    ``PREDICTION_STEPS`` solves at most, keeping the plan predicted closest above ``wanted``."""
    fastest = _solve_within_reach(solve_for, profile, math.inf)
    if fastest.predicted_speedup < wanted * (1 - PREDICTION_MATCH):
        return fastest, True
    low, high, best = REACH_PROBE, fastest.solve_speedup, fastest
    for _ in range(PREDICTION_STEPS):
        # (the first guess: near the aim, where the solve speedup usually lands; never beyond the reach)
        middle = math.sqrt(low * high) if low > REACH_PROBE else min(high, max(wanted * 0.8, math.sqrt(low * high)))
        plan = solve_for(profile, middle)
        if plan.predicted_speedup >= wanted * (1 - PREDICTION_MATCH):
            high = middle
            if plan.predicted_speedup < best.predicted_speedup or _key(plan) == _key(best):
                best = plan
            if plan.predicted_speedup <= wanted * (1 + PREDICTION_MATCH):
                break
        else:
            low = middle
    return best, False


def _fall_back(fallback: Solver, timer: PlanTimer, target: float, tolerance: float, max_rounds: int,
               log: Callable[[str], None], profile: Profile, rounds: list[Round]) -> Verified:
    """Bracket the ``fallback`` family with the rounds left, on ``profile`` as it was before the DP's plans were
    measured (their misses say little of uniform plans, the ones the profile itself timed); every round is
    reported, the final one meets."""
    left = max_rounds - len(rounds)
    if left < 1:
        return _settle(rounds, target, tolerance, "no round left for the uniform plans; raise --max-rounds")
    try:
        inner = meet_target(fallback, timer, target, tolerance, left, log, profile)
    except MachineTooBusy as exc:
        raise MachineTooBusy(str(exc), rounds + exc.rounds) from None
    except ShortOfTarget as exc:
        return _settle(rounds + exc.rounds, target, tolerance, "the uniform plans fell short too")
    except SpdyError as exc:
        return _settle(rounds, target, tolerance, str(exc))
    return Verified(rounds + inner.rounds, inner.final)


def _unsure(rounds: list[Round], target: float, tolerance: float) -> Round | None:
    """When no round meets: the least-pruned plan whose median meets the target though its interval's lower
    end does not, measured only once so far (a second measurement may settle it); else None."""
    if any(meets(r.measurement, target, tolerance) for r in rounds):
        return None
    times: dict[LevelsKey, int] = {}
    for r in rounds:
        times[_key(r.plan)] = times.get(_key(r.plan), 0) + 1
    close = [r for r in rounds if r.measurement.speedup >= target * (1.0 - tolerance) and times[_key(r.plan)] == 1]
    return min(close, key=lambda r: r.measurement.speedup, default=None)


def _settle(rounds: list[Round], target: float, tolerance: float, why: str) -> Verified:
    """The least-pruned round that meets the target, or ShortOfTarget."""
    meeting = [r for r in rounds if meets(r.measurement, target, tolerance)]
    if meeting:
        return Verified(rounds, min(meeting, key=lambda r: r.measurement.speedup))
    best = max(rounds, key=lambda r: r.measurement.speedup).measurement
    raise ShortOfTarget(f"no measured plan's 95% interval reaches {target:.3f}x (best {best.describe()}): {why}",
                        rounds)


def _key(plan: Plan) -> LevelsKey:
    return tuple(sorted(plan.levels.items()))


def _solve_within_reach(solve_for: Solver, profile: Profile, speedup: float) -> Plan:
    """Solve for ``speedup``; beyond the profile's reach (its fastest plan's speedup), the fastest plan there
    is (it may still measure up to the target)."""
    reach = solve_for(profile, REACH_PROBE).max_speedup
    return solve_for(profile, min(speedup, reach * REACH))
