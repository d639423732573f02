"""A correction of the analysed latency table, fitted to real engine calls.

The engine's per-operation analysis says which layer (or fusion block) costs what, but its numbers are a
noisier, biased instrument than real ``Engine`` calls: it reads the dense model slow, and the entries the DP
picks in mixed plans come out optimistic. Plans timed with real calls against dense (``EnginePoint``) correct
the table: every entry of layer l at level k is scaled by

    f_l(k) = u_band(k) + d_block(l), band(k)

and the time outside the layers becomes one intercept ``a`` (ms), so that a plan's predicted time
``a + sum_l f_l(k_l) t_l(k_l)`` matches the real calls' time of that plan at the profile's dense scale
(``dense_ms / measured speedup``). The fit is a ridge regression on relative errors: the per-band factors u
are shrunk toward 1, the per-block deviations d toward 0 with a strength chosen by leave-one-out error over
the fitted plans, and the intercept toward the analysed fixed time. A corrected table stays additive, so the
SPDY DP (Frantar & Alistarh 2022, Algorithm 1) remains exact on it.

Bands split the grid by sparsity (``BAND_EDGES``): dense, and two ranges of sparse levels, where
DeepSparse's kernels and their analysis bias differ. The shrinkage strengths were chosen on MobileNetV2 plans
timed twice on an AVX-512 Xeon (benchmarks/latency_model.py): three bands held out better than two or four,
and weaker band shrinkage let a band seen in few plans run off (a factor of 1.35, one held-out plan 17% off).
Later, 89 plans of five models timed there (65 benchmark plans and the profiles' 24 held-out ones) were
predicted about as well with edges at (0.8, 0.95), (0.6, 0.8, 0.95) or (0.7, 0.9): 2.2-2.5% median, 12-16%
worst; no choice of edges was better on every model, so the edge stayed. ``CORRECTION_MODEL`` numbers the
form of the fit and of the analysed table it scales (``noise.smoothed_across_levels``): a stored correction of
another form is refitted to its stored points when the profile loads.
The intercept and the dense band are held firmer: with one or two verification points the fit otherwise
bought their error with a large intercept and a small dense factor, which compresses every speedup.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import numpy as np

BAND_EDGES = (0.8,)  # sparse levels below 0.8 and from 0.8 up: bands 1 and 2 (0: dense)
CORRECTION_MODEL = 2  # 1: fitted to the raw analysed medians; 2: to medians smoothed across levels
BANDS = len(BAND_EDGES) + 2
# ridge strengths tried for the per-block deviations
BLOCK_STRENGTHS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
LOO_SLACK = 1.1  # the strongest strength whose leave-one-out median error is within this factor of the least
BAND_STRENGTH = 0.1  # ridge strength pulling the sparse bands' factors toward 1
DENSE_BAND_STRENGTH = 1.0  # and the dense band's: the dense point and the scale to real calls fix it
INTERCEPT_STRENGTH = 10.0  # ridge strength pulling the intercept toward the analysed fixed time (in dense units)
DENSE_WEIGHT = 4.0  # the dense point is the reference of every speedup: it counts this many times
VERIFY_WEIGHT = 10.0  # a plan verification measured (the DP's own kind of plan) counts this many times
FACTOR_RANGE = (0.25, 4.0)  # a corrected entry stays within this multiple of its analysed time


def band_of(sparsity: float) -> int:
    """0 for dense, else 1 + the number of ``BAND_EDGES`` at or below ``sparsity``."""
    if sparsity <= 0:
        return 0
    return 1 + sum(sparsity >= edge for edge in BAND_EDGES)


@dataclass(kw_only=True, frozen=True)
class EnginePoint:
    """One plan timed with real engine calls, interleaved with the dense model in the same run.

    ``levels`` holds a grid level per profile layer (in profile order); ``speedup`` is the paired median of
    dense over pruned with its 95% interval ``low``-``high``; ``dense_ms`` and ``pruned_ms`` are that run's
    median call times (ms). ``kind``: ``dense``, ``uniform``, ``random`` (a per-block mix) or ``verify`` (a
    plan verification measured); ``heldout`` points are left out of the fit and only scored.
    """

    levels: tuple[int, ...]
    speedup: float
    low: float
    high: float
    dense_ms: float
    pruned_ms: float
    kind: str
    heldout: bool = False

    def to_dict(self) -> dict:
        return {"levels": list(self.levels), "speedup": round(self.speedup, 5), "low": round(self.low, 5),
                "high": round(self.high, 5), "dense_ms": round(self.dense_ms, 5),
                "pruned_ms": round(self.pruned_ms, 5), "kind": self.kind, "heldout": self.heldout}

    @classmethod
    def from_dict(cls, data: object, layers: int, levels: int) -> EnginePoint:
        """ValueError (a sentence naming the field) when the point does not fit a profile of ``layers`` layers
        and ``levels`` grid levels: levels that are not whole numbers in range, a time or speedup that is not
        a positive finite number, a ``heldout`` that is not true or false."""
        if not isinstance(data, dict):
            raise ValueError("a calibration point must be an object")
        chosen = data.get("levels")
        if (not isinstance(chosen, list) or len(chosen) != layers
                or not all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < levels for k in chosen)):
            raise ValueError(f"a calibration point's 'levels' must list a whole grid level (0-{levels - 1}) for "
                             f"each of the {layers} layers")
        speedup, low, high, dense_ms, pruned_ms = (
            _positive(data.get(key), key) for key in ("speedup", "low", "high", "dense_ms", "pruned_ms"))
        if not isinstance(data.get("heldout", False), bool):
            raise ValueError("a calibration point's 'heldout' must be true or false")
        return cls(levels=tuple(chosen), speedup=speedup, low=low, high=high, dense_ms=dense_ms, pruned_ms=pruned_ms,
                   kind=str(data.get("kind", "")),
                   heldout=data.get("heldout", False))


@dataclass(kw_only=True, frozen=True)
class Correction:
    """The fitted correction: ``factors[l][k]`` scales layer l's analysed time at level k, ``intercept_ms``
    replaces the analysed fixed time (ms), ``dense_ms`` is the dense model's real call time (ms, median over the
    calibration runs). ``fit_error``: |predicted/measured speedup - 1| of the held-out points (``heldout_median``,
    ``heldout_max``, ``heldout_points``) and leave-one-out over the fitted ones (``loo_median``, ``loo_max``),
    with the uncorrected table's error on the held-out points for comparison (``uncorrected_heldout_*``)."""

    factors: list[list[float]]
    intercept_ms: float
    dense_ms: float
    band_factors: list[float]
    block_strength: float
    fit_error: dict = field(default_factory=dict)
    model: int = CORRECTION_MODEL  # the form fitted (``CORRECTION_MODEL`` when this code fitted it)

    @property
    def current(self) -> bool:
        """Whether this code's form of the fit (``CORRECTION_MODEL``) made the correction."""
        return self.model == CORRECTION_MODEL

    def to_dict(self) -> dict:
        return {"model": self.model, "factors": [[round(f, 5) for f in row] for row in self.factors],
                "intercept_ms": round(self.intercept_ms, 5), "dense_ms": round(self.dense_ms, 5),
                "band_factors": [round(f, 5) for f in self.band_factors], "band_edges": list(BAND_EDGES),
                "block_strength": self.block_strength, "fit_error": self.fit_error}

    @classmethod
    def from_dict(cls, data: object, layers: int, levels: int) -> Correction:
        """ValueError (a sentence naming the field) when the correction does not fit a profile of ``layers``
        layers and ``levels`` grid levels, or holds a factor or time that is not a positive finite number (the
        intercept may be 0 but not negative), or a ``fit_error`` entry that is not a number."""
        if not isinstance(data, dict):
            raise ValueError("the correction must be an object")
        rows = data.get("factors")
        if (not isinstance(rows, list) or len(rows) != layers
                or not all(isinstance(row, list) and len(row) == levels for row in rows)):
            raise ValueError(f"the correction's 'factors' must be {layers} layers x {levels} levels")
        factors = [[_positive(f, "factors") for f in row] for row in rows]
        model = data.get("model", 1)
        if isinstance(model, bool) or not isinstance(model, int):
            raise ValueError(f"the correction's 'model' holds {model!r}, not a whole number")
        raw_intercept = data.get("intercept_ms")
        if model == 1 and isinstance(raw_intercept, float) and math.isfinite(raw_intercept):
            raw_intercept = max(0.0, raw_intercept)  # form 1 could fit below 0; it is refitted on loading anyway
        intercept = _positive(raw_intercept, "intercept_ms", zero=True)
        fit_error = data.get("fit_error") or {}
        if not isinstance(fit_error, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in fit_error.values()):
            raise ValueError("the correction's 'fit_error' must map names to finite numbers")
        bands = data.get("band_factors") or []
        return cls(model=model, factors=factors, intercept_ms=intercept,
                   dense_ms=_positive(data.get("dense_ms"), "dense_ms"),
                   band_factors=[_positive(f, "band_factors") for f in bands] if isinstance(bands, list) else [],
                   block_strength=_positive(data.get("block_strength", 1.0), "block_strength"),
                   fit_error=dict(fit_error))


def _positive(value: object, key: str, zero: bool = False) -> float:
    """``value`` as a float; ValueError naming ``key`` unless it is a finite number above 0 (or 0 with ``zero``)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value < 0 or (value == 0 and not zero)):
        raise ValueError(f"'{key}' holds {value!r}, not a {'non-negative' if zero else 'positive'} finite number")
    return float(value)


@dataclass(frozen=True)
class Table:
    """What the fit corrects: the median analysed time ``times[l][k]`` (ms, layers x levels), the analysed
    fixed time ``fixed_ms``, the sparsity of each level (``grid``) and each layer's fusion block index."""

    times: np.ndarray
    fixed_ms: float
    grid: list[float]
    block_of: list[int]

    def design(self, levels: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """One plan's features: the analysed time per band (BANDS,) and per (block, band) (blocks x BANDS)."""
        per_band = np.zeros(BANDS)
        per_block = np.zeros((max(self.block_of) + 1, BANDS))
        for layer, level in enumerate(levels):
            band, ms = band_of(self.grid[level]), self.times[layer, level]
            per_band[band] += ms
            per_block[self.block_of[layer], band] += ms
        return per_band, per_block

    def dense_ms(self) -> float:
        """The table's own dense time: the fixed time plus every layer's dense time (ms)."""
        return self.fixed_ms + float(self.times[:, 0].sum())

    def uncorrected_speedup(self, levels: tuple[int, ...]) -> float:
        """The analysed table's own prediction of the plan's speedup (dense over plan, both from the table)."""
        return self.dense_ms() / (self.fixed_ms + float(self.times[np.arange(len(levels)), list(levels)].sum()))


def fit_correction(table: Table, points: list[EnginePoint], dense_ms: float) -> Correction:
    """Fit the correction to the non-held-out ``points`` and score it on the held-out ones.

    Each point asks that the corrected plan time, as a fraction of the corrected dense time, be
    ``1 / speedup``; the dense model is always one more point (at ``DENSE_WEIGHT``). The fit runs in the
    table's own units (its analysed dense time), so that the priors hold the table's shape, not its scale;
    the result is scaled to the real dense call time ``dense_ms`` (ms). ValueError when no point is left to
    fit."""
    fit = [p for p in points if not p.heldout]
    if not fit:
        raise ValueError("no calibration point to fit")
    analysed_dense = table.dense_ms()
    strength = _choose_strength(table, fit, analysed_dense) if len(fit) >= 3 else BLOCK_STRENGTHS[-1]
    correction = _correction(table, _solve(table, fit, analysed_dense, strength), dense_ms, strength)
    held = [p for p in points if p.heldout]
    error: dict = {"fitted_points": len(fit), "heldout_points": len(held)}
    if held:
        off = [abs(predict_speedup(table, correction, p.levels) / p.speedup - 1) for p in held]
        raw = [abs(table.uncorrected_speedup(p.levels) / p.speedup - 1) for p in held]
        error.update(heldout_median=round(statistics.median(off), 5), heldout_max=round(max(off), 5),
                     uncorrected_heldout_median=round(statistics.median(raw), 5),
                     uncorrected_heldout_max=round(max(raw), 5))
    if len(fit) >= 3:
        loo = _leave_one_out(table, fit, analysed_dense, strength)
        error.update(loo_median=round(statistics.median(loo), 5), loo_max=round(max(loo), 5))
    return Correction(factors=correction.factors, intercept_ms=correction.intercept_ms, dense_ms=dense_ms,
                      band_factors=correction.band_factors, block_strength=strength,
                      fit_error=error)


def predict_ms(table: Table, correction: Correction, levels: tuple[int, ...]) -> float:
    """The corrected time (ms) of the plan putting layer l at grid level ``levels[l]``."""
    rows = np.arange(len(levels))
    chosen = list(levels)
    factors = np.asarray(correction.factors)
    return correction.intercept_ms + float((table.times[rows, chosen] * factors[rows, chosen]).sum())


def predict_speedup(table: Table, correction: Correction, levels: tuple[int, ...]) -> float:
    """The corrected speedup of the plan: the real dense call time over ``predict_ms``."""
    return correction.dense_ms / predict_ms(table, correction, levels)


def _rows(table: Table, points: list[EnginePoint], dense_ms: float, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """The weighted least-squares system of the ridge fit, in units where the dense model takes ``dense_ms``:
    parameters are the intercept (a fraction of ``dense_ms``), the per-band factors, then the per-(block, band)
    deviations; prior rows pull them to the analysed fixed time, to 1 and to 0. Verification's points (the
    DP's own plans) weigh ``VERIFY_WEIGHT``."""
    blocks = max(table.block_of) + 1
    size = 1 + BANDS + blocks * BANDS
    dense = EnginePoint(levels=tuple([0] * len(table.block_of)), speedup=1.0, low=1.0, high=1.0, dense_ms=dense_ms,
                        pruned_ms=dense_ms, kind="dense")
    rows, targets = [], []
    for point, weight in [(dense, DENSE_WEIGHT)] + [(p, VERIFY_WEIGHT if p.kind == "verify" else 1.0) for p in points]:
        wanted = dense_ms / point.speedup
        per_band, per_block = table.design(point.levels)
        row = np.concatenate([[dense_ms], per_band, per_block.ravel()]) / wanted * math.sqrt(weight)
        rows.append(row)
        targets.append(math.sqrt(weight))
    prior = np.zeros(size)
    prior[0], prior[1:1 + BANDS] = table.fixed_ms / dense_ms, 1.0
    penalties = np.concatenate([[INTERCEPT_STRENGTH, DENSE_BAND_STRENGTH], np.full(BANDS - 1, BAND_STRENGTH),
                                np.full(blocks * BANDS, strength)])
    unused = ~np.any(np.asarray(rows) != 0, axis=0)  # features no point has: held at their prior
    penalties = np.where(unused, 1.0, penalties)
    for index in range(size):
        row = np.zeros(size)
        row[index] = math.sqrt(penalties[index])
        rows.append(row)
        targets.append(math.sqrt(penalties[index]) * prior[index])
    return np.asarray(rows), np.asarray(targets)


def _solve(table: Table, points: list[EnginePoint], dense_ms: float, strength: float) -> np.ndarray:
    matrix, targets = _rows(table, points, dense_ms, strength)
    return np.linalg.lstsq(matrix, targets, rcond=None)[0]


def _correction(table: Table, params: np.ndarray, dense_ms: float, strength: float) -> Correction:
    """The fitted parameters as a correction, every factor and the intercept scaled by the real over the
    analysed dense time. The corrected dense model is the fit's, not forced to ``dense_ms``: measured here,
    plans' speedups came out 1-2% below what a table forced through the dense point predicts (MobileNetV2,
    held-out 3.6% against 1.7% unforced), so a plan that prunes nothing may predict slightly below 1.0x
    (sparse kernels' own cost)."""
    bands = params[1:1 + BANDS]
    deviations = params[1 + BANDS:].reshape(-1, BANDS)
    levels = [band_of(s) for s in table.grid]
    scale = dense_ms / table.dense_ms()
    factors = [[scale * float(np.clip(bands[b] + deviations[block, b], *FACTOR_RANGE)) for b in levels]
               for block in table.block_of]
    intercept = max(0.0, float(params[0] * table.dense_ms()) * scale)  # a time: a fit below 0 is held at 0
    return Correction(factors=factors, intercept_ms=intercept, dense_ms=dense_ms,
                      band_factors=[float(b) for b in bands], block_strength=strength)


def _leave_one_out(table: Table, points: list[EnginePoint], dense_ms: float, strength: float) -> list[float]:
    """|predicted/measured - 1| of each point, predicted by the fit to the others."""
    errors = []
    for index, point in enumerate(points):
        others = points[:index] + points[index + 1:]
        correction = _correction(table, _solve(table, others, dense_ms, strength), dense_ms, strength)
        errors.append(abs(predict_speedup(table, correction, point.levels) / point.speedup - 1))
    return errors


def _choose_strength(table: Table, points: list[EnginePoint], dense_ms: float) -> float:
    """The strongest per-block ridge strength whose median leave-one-out error is within ``LOO_SLACK`` of the
    least (the one-standard-error habit: prefer the simpler fit among those that predict as well)."""
    scores = {s: statistics.median(_leave_one_out(table, points, dense_ms, s)) for s in BLOCK_STRENGTHS}
    least = min(scores.values())
    return max(s for s, score in scores.items() if score <= least * LOO_SLACK)
