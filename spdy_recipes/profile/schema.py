"""The hardware profile file: schema, loading with validation, saving, and derived quantities.

A profile is JSON (``format: spdy-recipes/profile``, ``format_version: 2``, 3 for the mixed design).
Every timing is kept per repeat: ``layers[i].samples_ms[k][r]`` is layer i's time (ms) inside the whole
model in repeat r of the run with every prunable kernel at ``grid[k]`` sparsity (including the non-layer
operations just before it); ``other_samples_ms[k][r]`` is the time after the last layer and
``total_samples_ms[k][r]`` the whole run. ``engine.call_overhead_ms`` is what one real engine call
costs beyond the analysed operations. With ``engine.design: mixed``, run k of repeat r is a real-zero
model with layer i at level (k + ``engine.design_shifts[r][i]``) mod levels, so ``samples_ms[k][r]``
is still layer i's time at ``grid[k]``, next to neighbours at other levels, while ``other_samples_ms``
and ``total_samples_ms`` are indexed by run; ``dense_total_samples_ms[r]`` is the dense model's
analysed time in repeat r. ``fused_groups[k]`` (optional) lists the groups of layers that one engine
operation computed together in run k (a DeepSparse "pyramid"); ``Profile.blocks`` joins them.
Planning uses an upper quantile over repeats (conservative); predictions use the median.

``format_version: 4`` adds ``calibration``: plans timed with real engine calls against dense
(``calibration.points``, each a ``profile.correction.EnginePoint``) and the correction fitted to them
(``calibration.correction``, a ``profile.correction.Correction``). A calibrated profile's times, fixed time and
dense time are the corrected ones; the analysed samples stay as measured (attribution). A correction of an
older form (``correction.model``) is refitted to the stored points on loading. Older profiles load as
uncalibrated: their predictions are the analysis alone.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..deployment import Deployment
from ..errors import SpdyError
from ..files import atomic_write_json, read_json
from .correction import Correction, EnginePoint, Table, fit_correction
from .grid import validate_grid
from .noise import smoothed_across_levels

FORMAT = "spdy-recipes/profile"
FORMAT_VERSION = 2
MIXED_FORMAT_VERSION = 3  # mixed-design profiles: older tools, which would misread them, refuse them
CALIBRATED_FORMAT_VERSION = 4  # profiles corrected on real engine calls (either design)
FORMAT_VERSIONS = (FORMAT_VERSION, MIXED_FORMAT_VERSION, CALIBRATED_FORMAT_VERSION)
MEDIAN = 0.5


def quantile(samples: list[float], q: float) -> float:
    """The ``q`` quantile of repeated measurements (linear interpolation; 0.5 is the median)."""
    return float(np.quantile(np.asarray(samples, dtype=float), q))


def quantiles(rows: list[list[float]], q: float) -> list[float]:
    """``quantile(row, q)`` of every row, in one vectorised pass when the rows have equal lengths."""
    try:
        table = np.asarray(rows, dtype=float)
    except ValueError:  # rows of different lengths
        return [quantile(row, q) for row in rows]
    if table.ndim != 2 or not table.size:
        return [quantile(row, q) for row in rows]
    values: list[float] = np.quantile(table, q, axis=1).tolist()
    return values


@dataclass(kw_only=True)
class LayerTimes:
    """One prunable layer's latency samples at every grid level, and the engine kernel that ran it."""

    name: str
    module: str
    kind: str
    shape: list[int]
    flops: int
    samples_ms: list[list[float]]
    kernels: list[str]
    factors: list[float] | None = field(default=None, repr=False, compare=False)  # the profile's correction

    def analysed(self, q: float = MEDIAN) -> list[float]:
        """The ``q`` quantile over repeats at every level (ms), smoothed across neighbouring sparse levels
        (``noise.smoothed_across_levels``): the analysis alone, what a calibration corrects."""
        return smoothed_across_levels(quantiles(self.samples_ms, q))

    def times(self, q: float = MEDIAN) -> list[float]:
        """``analysed(q)`` at every level (ms), corrected by the profile's calibration."""
        analysed = self.analysed(q)
        if self.factors is None:
            return analysed
        return [ms * f for ms, f in zip(analysed, self.factors, strict=True)]

    @property
    def times_ms(self) -> list[float]:
        """Median time at every level."""
        return self.times(MEDIAN)

    @property
    def spread_ms(self) -> list[float]:
        """Max minus min over repeats at every level."""
        return [max(level) - min(level) for level in self.samples_ms]


@dataclass(kw_only=True)
class Profile:
    """Per-layer latency tables of one model on one machine, batch size and core count."""

    model: dict[str, Any]
    hardware: dict[str, Any]
    engine: dict[str, Any]
    grid: list[float]
    layers: list[LayerTimes]
    other_samples_ms: list[list[float]]
    total_samples_ms: list[list[float]]
    flags: dict[str, Any]
    created: str
    tool_version: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    notes: dict[str, Any] = field(default_factory=dict)
    dense_total_samples_ms: list[float] = field(default_factory=list)  # mixed design: the dense runs
    fused_groups: list[list[list[str]]] = field(default_factory=list)  # per level (run): layers one op fused
    engine_points: list[EnginePoint] = field(default_factory=list)  # plans timed with real engine calls
    correction: Correction | None = None  # fitted to ``engine_points``; None: uncalibrated
    # the dense model every speedup is over, when not the profile's own (``with_baseline``); never saved
    baseline_ms: float | None = field(default=None, compare=False)
    # the file's own ``content_hash`` when loading refitted an older form of its correction (recipes solved on
    # the file before name that hash); never saved
    stored_hash: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for index, layer in enumerate(self.layers):
            layer.factors = self.correction.factors[index] if self.correction else None

    @property
    def calibrated(self) -> bool:
        """Whether the times are corrected on real engine calls (else they are the analysis alone)."""
        return self.correction is not None

    def calibration_label(self) -> str:
        """How far the profile's predictions are checked against real engine calls, for every claim made
        on them: ``calibrated on 16 plans timed with real engine calls, held-out error 1.7% median, 2.0% max``
        or ``uncalibrated (engine analysis only; ...)``."""
        if self.correction is None:
            return "uncalibrated (engine analysis only; not checked against real engine calls)"
        error = self.correction.fit_error
        held = (f", held-out error {error['heldout_median']:.1%} median, {error['heldout_max']:.1%} max"
                if "heldout_median" in error else "")
        verified = sum(p.kind == "verify" for p in self.engine_points)
        extra = f", {verified} of them measured by verification" if verified else ""
        count = len(self.engine_points)
        return f"calibrated on {count} plan{'s' if count != 1 else ''} timed with real engine calls{extra}{held}"

    def analysed_table(self) -> Table:
        """The uncorrected median table the correction is fitted to, with each layer's fusion block."""
        block_index = {name: i for i, block in enumerate(self.blocks()) for name in block}
        return Table(np.array([layer.analysed(MEDIAN) for layer in self.layers]),
                     self._analysed_fixed(MEDIAN), list(self.grid), [block_index[n] for n in self.layer_names])

    def with_engine_points(self, points: list[EnginePoint], dense_ms: float | None = None) -> Profile:
        """A copy calibrated on ``engine_points`` plus ``points`` (the fit refitted); ``dense_ms`` is the real
        dense call time (ms; default: the current calibration's)."""
        dense = dense_ms if dense_ms is not None else (self.correction.dense_ms if self.correction else None)
        if dense is None:
            raise ValueError("the first calibration needs the real dense call time")
        every = list(self.engine_points) + list(points)
        correction = fit_correction(self.analysed_table(), every, dense)
        layers = [replace(layer) for layer in self.layers]
        return replace(self, layers=layers, engine_points=every, correction=correction)

    def refitted(self, points: list[EnginePoint] | tuple[EnginePoint, ...]) -> Profile:
        """This profile refitted on verification ``points`` too (itself when there are none); an uncalibrated
        profile takes the first point's real dense call time (ms) as its dense time."""
        if not points:
            return self
        return self.with_engine_points(list(points), None if self.calibrated else points[0].dense_ms)

    def recorded_points(self, records: object) -> list[EnginePoint]:
        """Calibration points as a recipe's metadata records them (``verify_points``); SpdyError when they do
        not fit this profile."""
        if not records:
            return []
        try:
            if not isinstance(records, list):
                raise ValueError("they must be a list")
            points = [EnginePoint.from_dict(record, len(self.layers), len(self.grid)) for record in records]
        except ValueError as exc:
            raise SpdyError(f"the recipe's verify_points do not fit the profile: {exc}") from None
        if any(point.heldout or point.kind != "verify" for point in points):
            raise SpdyError("the recipe's verify_points must be plans verification measured (kind 'verify', not "
                            "held out)")
        return points

    def without_calibration(self) -> Profile:
        """A copy whose times are the analysis alone."""
        return replace(self, layers=[replace(layer) for layer in self.layers], engine_points=[], correction=None)

    def blocks(self) -> list[list[str]]:
        """The layers, partitioned into fusion blocks in model order: two layers share a block when one
        engine operation fused them in any run of the profile (transitively). DeepSparse times a fused
        "pyramid" as one operation, so a block's time is known only for the level combinations the runs
        measured: the planner keeps a block's layers at one level. Without ``fused_groups`` (older
        profiles) every layer is its own block."""
        names = self.layer_names
        parent = {name: name for name in names}

        def root(name: str) -> str:
            while parent[name] != name:
                name = parent[name]
            return name

        for groups in self.fused_groups:
            for group in groups:
                for name in group[1:]:
                    parent[root(name)] = root(group[0])
        blocks: dict[str, list[str]] = {}  # in order of each block's first layer, members in model order
        for name in names:
            blocks.setdefault(root(name), []).append(name)
        return list(blocks.values())

    @property
    def deployment(self) -> Deployment:
        """The precision and mask type the profile was timed in (``model.precision``, ``model.mask_type``;
        absent: fp32, unstructured)."""
        return Deployment(str(self.model.get("precision", "fp32")), str(self.model.get("mask_type", "unstructured")))

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def repeats(self) -> int:
        return len(self.total_samples_ms[0])

    @property
    def call_overhead_ms(self) -> float:
        return float(self.engine.get("call_overhead_ms", 0.0))

    def fixed(self, q: float = MEDIAN) -> float:
        """Time outside the prunable layers (ms): per-call overhead plus the time after the last layer (its
        ``q`` quantile over repeats, median over levels); calibrated, the correction's intercept plus the same
        margin of the ``q`` quantile over the median."""
        if self.correction is None:
            return self._analysed_fixed(q)
        return self.correction.intercept_ms + self._analysed_fixed(q) - self._analysed_fixed(MEDIAN)

    def _analysed_fixed(self, q: float) -> float:
        tails = quantiles(self.other_samples_ms, q)
        return self.call_overhead_ms + float(np.median(tails))

    @property
    def fixed_ms(self) -> float:
        return self.fixed(MEDIAN)

    @property
    def engine_label(self) -> str:
        """``deepsparse 1.8.0``: the engine that measured the profile, as ``profile.engine.engine_label``
        names a timing backend."""
        return f"{self.engine.get('name')} {self.engine.get('version')}"

    @property
    def design(self) -> str:
        return str(self.engine.get("design", "uniform"))

    def with_baseline(self, precision: str) -> Profile:
        """A view of this profile whose speedups are over the dense model in ``precision`` (``fp32`` or ``int8``).
        An INT8 profile over fp32: ``dense_ms`` becomes the dense INT8 call time times INT8's own speedup over
        fp32, both measured with real calls in the calibration run (``engine.int8_speedup_over_fp32``), so
        that the DP's budget, every prediction and every target are over the model the user runs today.
        Raises SpdyError for an INT8 baseline of an fp32 profile, and for an fp32 baseline of an INT8
        profile that was not calibrated (no fp32 call was timed)."""
        own = self.deployment.resolved().precision
        if precision == own:
            return replace(self, baseline_ms=None)
        if own == "fp32":
            raise SpdyError("--baseline int8 needs a profile measured with --precision int8")
        gain = self.int8_gain
        if gain is None or self.correction is None:
            raise SpdyError("an INT8 profile's speedups over dense fp32 need its calibration (the run that times the "
                            "dense fp32 model too): measure it with --calibration-plans above 0, or pass "
                            "--baseline int8")
        return replace(self, baseline_ms=self.correction.dense_ms * gain[0])

    @property
    def int8_gain(self) -> tuple[float, float, float] | None:
        """Dense INT8's speedup over dense fp32 and its 95% interval (median, low, high), timed with real engine
        calls in an INT8 profile's calibration run (``engine.int8_speedup_over_fp32``); None where not timed."""
        gain = self.engine.get("int8_speedup_over_fp32")
        if not isinstance(gain, list) or len(gain) != 3:
            return None
        return float(gain[0]), float(gain[1]), float(gain[2])

    def int8_gain_label(self) -> str:
        """``dense INT8 runs 2.48x dense fp32 (2.31-2.54, real engine calls)``, or empty where not timed."""
        gain = self.int8_gain
        return "" if gain is None else (f"dense INT8 runs {gain[0]:.2f}x dense fp32 ({gain[1]:.2f}-{gain[2]:.2f}, "
                                        "real engine calls)")

    @property
    def baseline(self) -> str:
        """The precision of the dense model the speedups are over (``with_baseline``)."""
        return "fp32" if self.baseline_ms is not None else self.deployment.resolved().precision

    @property
    def baseline_ratio(self) -> float:
        """The baseline's dense time over the profile's own dense time: INT8's measured speedup over fp32 for an
        INT8 profile seen over fp32, else 1. A speedup over the profile's own dense model is the one over the
        baseline divided by this."""
        return 1.0 if self.baseline_ms is None else self.baseline_ms / self._own_dense_ms()

    @property
    def dense_ms(self) -> float:
        """Dense latency of one engine call (ms) of the baseline model (``with_baseline``; by default the
        profile's own): calibrated, the real calls' median; else per-call overhead plus the median analysed
        dense run (mixed design), or the fixed time plus every layer's median dense time (uniform design)."""
        return self.baseline_ms if self.baseline_ms is not None else self._own_dense_ms()

    def _own_dense_ms(self) -> float:
        if self.correction is not None:
            return self.correction.dense_ms
        if self.dense_total_samples_ms:
            return self.call_overhead_ms + quantile(self.dense_total_samples_ms, MEDIAN)
        return self.fixed_ms + sum(quantile(layer.samples_ms[0], MEDIAN) for layer in self.layers)

    def predicted_ms(self, levels: dict[str, int]) -> float:
        """The median prediction (ms) of the plan putting each layer at its grid level (missing: dense): the
        fixed time plus every layer's median time at its level (the planner's ``Plan.predicted_ms``)."""
        return self.fixed_ms + sum(layer.times_ms[levels.get(layer.name, 0)] for layer in self.layers)

    def predicted_speedup(self, levels: dict[str, int]) -> float:
        """``dense_ms`` over ``predicted_ms(levels)``."""
        return self.dense_ms / self.predicted_ms(levels)

    @property
    def total_ms(self) -> list[float]:
        """Median analysed total at every level."""
        return quantiles(self.total_samples_ms, MEDIAN)

    def level_spread(self) -> list[float]:
        """Relative spread (max-min over median) of the whole-model time at every level (uniform design), or
        of the dense runs alone (mixed design, one value: run k differs between repeats)."""
        series = [self.dense_total_samples_ms] if self.dense_total_samples_ms else self.total_samples_ms
        return [(max(s) - min(s)) / quantile(s, MEDIAN) for s in series]

    @property
    def batch_size(self) -> int:
        return int(self.model["batch_size"])

    @property
    def cores(self) -> int:
        return int(self.engine["num_cores"])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for layer in data["layers"]:
            del layer["factors"]
        del data["engine_points"], data["correction"], data["baseline_ms"], data["stored_hash"]
        data["format_version"] = FORMAT_VERSION  # the version follows the content
        if data["dense_total_samples_ms"]:
            data["format_version"] = MIXED_FORMAT_VERSION
        else:  # uniform design: the file (and its hash) as before
            del data["dense_total_samples_ms"]
        if not data["fused_groups"]:
            del data["fused_groups"]
        if self.correction is not None:
            data["format_version"] = CALIBRATED_FORMAT_VERSION
            data["calibration"] = {"points": [p.to_dict() for p in self.engine_points],
                                   "correction": self.correction.to_dict()}
        return data

    def content_hash(self) -> str:
        """A hash of the measured content (the provenance date excluded)."""
        data = self.to_dict()
        data.pop("created", None)
        payload = json.dumps(data, sort_keys=True).encode()
        return "sha256:" + hashlib.sha256(payload).hexdigest()[:32]


def save_profile(profile: Profile, path: str | Path) -> Path:
    """Write ``profile`` atomically as JSON."""
    return atomic_write_json(path, profile.to_dict())


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file; any defect is a one-line SpdyError."""
    path = Path(path)
    data = read_json(path, "profile")
    try:
        return profile_from_dict(data)
    except SpdyError as exc:
        raise SpdyError(f"malformed profile {path}: {exc}") from None


def profile_from_dict(data: object) -> Profile:
    """Build a Profile from parsed JSON, checking every field."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SpdyError(f"not a {FORMAT} file")
    if data.get("format_version") not in FORMAT_VERSIONS:
        raise SpdyError(f"format_version {data.get('format_version')!r} is not supported (expected one of "
                        f"{', '.join(map(str, FORMAT_VERSIONS))}; measure it again with spdy-recipe profile)")
    for key in ("model", "hardware", "engine"):
        if not isinstance(data.get(key), dict):
            raise SpdyError(f"'{key}' must be an object")
    for key in ("graph_hash", "batch_size", "spec"):
        if key not in data["model"]:
            raise SpdyError(f"'model.{key}' is missing")
    if "num_cores" not in data["engine"]:
        raise SpdyError("'engine.num_cores' is missing")
    grid = _numbers(data.get("grid"), "grid")
    validate_grid(grid)
    levels = len(grid)
    other = _samples(data.get("other_samples_ms"), "other_samples_ms", levels)
    total = _samples(data.get("total_samples_ms"), "total_samples_ms", levels)
    repeats = len(total[0])
    raw_layers = data.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise SpdyError("'layers' must be a non-empty list")
    layers, seen = [], set()
    for index, raw in enumerate(raw_layers):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise SpdyError(f"layers[{index}] needs a string 'name'")
        name = raw["name"]
        if name in seen:
            raise SpdyError(f"layer {name!r} is listed twice")
        seen.add(name)
        samples = _samples(raw.get("samples_ms"), f"layer {name!r} samples_ms", levels)
        kernels = raw.get("kernels", [""] * levels)
        if not isinstance(kernels, list) or len(kernels) != levels:
            raise SpdyError(f"layer {name!r} kernels must list one kernel per grid level")
        layers.append(LayerTimes(name=name, module=str(raw.get("module", "")), kind=str(raw.get("kind", "")),
                                 shape=list(raw.get("shape", [])), flops=int(raw.get("flops", 0)), samples_ms=samples,
                                 kernels=[str(k) for k in kernels]))
    for what, series in [("other_samples_ms", other)] + [(f"layer {lt.name!r}", lt.samples_ms) for lt in layers]:
        if any(len(level) != repeats for level in series):
            raise SpdyError(f"{what} must hold {repeats} repeat(s) at every level, like total_samples_ms")
    flags = data.get("flags") or {}
    if not isinstance(flags, dict):
        raise SpdyError("'flags' must be an object")
    dense = []
    if data["format_version"] == MIXED_FORMAT_VERSION or data.get("dense_total_samples_ms"):
        dense = _numbers(data.get("dense_total_samples_ms"), "dense_total_samples_ms")
        if len(dense) != repeats:
            raise SpdyError(f"dense_total_samples_ms must hold {repeats} repeat(s), like total_samples_ms")
    fused = data.get("fused_groups") or []
    known = set(seen)
    if not isinstance(fused, list) or (fused and len(fused) != levels) or not all(
            isinstance(groups, list) and all(isinstance(g, list) and set(g) <= known for g in groups)
            for groups in fused):
        raise SpdyError("'fused_groups' must list, per grid level, groups of the profile's layer names")
    model = data["model"]
    Deployment(model.get("precision", "fp32"), model.get("mask_type", "unstructured")).resolved(
        ("'model.precision'", "'model.mask_type'"))
    points, correction = _calibration(data, len(layers), levels)
    profile = Profile(
        model=data["model"], hardware=data["hardware"], engine=data["engine"], grid=grid, layers=layers,
        other_samples_ms=other, total_samples_ms=total, flags=flags, created=str(data.get("created", "")),
        tool_version=str(data.get("tool_version", "")), notes=data.get("notes") or {},
        format_version=int(data["format_version"]),
        dense_total_samples_ms=dense, fused_groups=fused, engine_points=points, correction=correction,
    )
    if correction is not None and not correction.current:  # fitted by an older form: refit on its real calls
        try:
            refitted = profile.with_engine_points([], correction.dense_ms)
        except ValueError as exc:
            raise SpdyError(f"its calibration cannot be refitted: {exc}") from None
        return replace(refitted, stored_hash=profile.content_hash())
    return profile


def _calibration(data: dict[str, Any], layers: int, levels: int) -> tuple[list[EnginePoint], Correction | None]:
    """The calibration points and correction of a version-4 profile (none for older ones)."""
    raw = data.get("calibration")
    if raw is None:
        if data["format_version"] == CALIBRATED_FORMAT_VERSION:
            raise SpdyError("a format_version 4 profile needs 'calibration'")
        return [], None
    if data["format_version"] != CALIBRATED_FORMAT_VERSION:
        raise SpdyError(f"'calibration' needs format_version {CALIBRATED_FORMAT_VERSION}, not "
                        f"{data['format_version']}")
    try:
        if not isinstance(raw, dict) or not isinstance(raw.get("points"), list) or not raw["points"]:
            raise ValueError("its 'points' must be a non-empty list")
        points = [EnginePoint.from_dict(point, layers, levels) for point in raw["points"]]
        correction = Correction.from_dict(raw.get("correction"), layers, levels)
    except ValueError as exc:
        raise SpdyError(f"'calibration' is malformed: {exc}") from None
    return points, correction


def _numbers(values: object, what: str) -> list[float]:
    if not isinstance(values, list) or not values:
        raise SpdyError(f"'{what}' must be a non-empty list of numbers")
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpdyError(f"'{what}' holds {value!r}, not a finite number")
        result.append(float(value))
    return result


def _samples(values: object, what: str, levels: int) -> list[list[float]]:
    """A list (one per grid level) of non-empty lists of non-negative times."""
    if not isinstance(values, list) or len(values) != levels:
        count = len(values) if isinstance(values, list) else "no"
        raise SpdyError(f"{what} has {count} levels for {levels} grid levels")
    result = [_numbers(level, what) for level in values]
    if any(value < 0 for level in result for value in level):
        raise SpdyError(f"{what} holds a negative time")
    return result
