"""Where to aim the next plan, from the plans measured so far: the one bracketing routine that verification
(``verify.loop``) and the comparison at equal measured speed (``evaluate.matching``) both steer by."""

from __future__ import annotations

import math

BRACKET_INSIDE = (0.2, 0.8)  # between two bracketing points, stay this far inside (fractions of the log-gap)
EXTRAPOLATION_REACH = 4.0  # beyond the measured points, at most this many of their gaps (verification's)
STEP_LIMIT = 2.0  # and never more than this factor from the nearest measured point at once


def next_aim(points: list[tuple[float, float, bool]], aim: float, reach: float = EXTRAPOLATION_REACH) -> float:
    """The x (a predicted speedup) at which the next measurement should read ``aim``, from the measured
    ``(x, measured speedup, whether it met)`` points.

    The measured speedup is taken as log-linear in x between measured points. With measurements on both
    sides (short, and meeting), interpolate between the lowest x that met and the highest x below it that fell
    short (a short point above a met one is noise), staying ``BRACKET_INSIDE`` the pair. With one side only,
    extrapolate through its two points closest to ``aim`` (at most ``reach`` of their gap), or with one point
    scale its x by aim / measured; when the extrapolation points back past the measured plans, scale the
    outermost one that way instead; never more than a factor ``STEP_LIMIT`` at once. Below 1.0 is allowed:
    callers clamp to what they can solve.
    """
    short = [(x, measured) for x, measured, met in points if not met]
    over = [(x, measured) for x, measured, met in points if met]
    above = min(over, default=None)  # the lowest x that met
    below = max((p for p in short if above is None or p[0] < above[0]), default=None)
    if below and above:
        fraction = _fraction(below, above, aim)
        inside = 0.5 if fraction is None else min(BRACKET_INSIDE[1], max(BRACKET_INSIDE[0], fraction))
        return _between(below[0], above[0], inside)
    side = sorted(short or over, key=lambda point: abs(math.log(point[1] / aim)))
    s0, m0 = side[0]
    guess = s0 * aim / m0
    if len(side) > 1:
        fraction = _fraction((s0, m0), side[1], aim)
        if fraction is not None:
            guess = _between(s0, side[1][0], max(-reach, min(reach, fraction)))
    # noise (or a re-searched plan) can tilt the line back past the measured plans: then scale from the
    # outermost one, the least pruned that met (relaxing) or the most pruned that fell short (tightening)
    edge_x, edge_measured = (min if not short else max)(side)
    if (guess >= edge_x) if not short else (guess <= edge_x):
        s0, guess = edge_x, edge_x * aim / edge_measured
    return min(max(guess, s0 / STEP_LIMIT), s0 * STEP_LIMIT)


def _fraction(first: tuple[float, float], second: tuple[float, float], aim: float) -> float | None:
    """Where ``aim`` falls on the log-measured line from ``first`` to ``second`` (0 at first, 1 at second);
    None when the measurements do not grow with x (noise, or the same plan)."""
    (s0, m0), (s1, m1) = first, second
    if (s1 - s0) * (m1 - m0) <= 0 or m1 == m0:
        return None
    return (math.log(aim) - math.log(m0)) / (math.log(m1) - math.log(m0))


def _between(s0: float, s1: float, fraction: float) -> float:
    """The point ``fraction`` of the way from ``s0`` to ``s1`` on a log scale."""
    return math.exp(math.log(s0) + fraction * (math.log(s1) - math.log(s0)))
