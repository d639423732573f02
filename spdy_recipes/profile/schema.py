"""The hardware profile file: schema, loading with validation, saving, and derived quantities.

A profile is JSON (``format: spdy-recipes/profile``, ``format_version: 1``). ``layers[i].times_ms[k]`` is
layer i's time inside the whole model when every prunable kernel runs at ``grid[k]`` sparsity
(including the non-layer operations just before it); ``other_ms[k]`` is the time after the last layer
in that run, and ``total_ms[k]`` the whole run.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..files import atomic_write_json, read_json
from ..errors import SpdyError
from ..grid import validate_grid

FORMAT = "spdy-recipes/profile"
FORMAT_VERSION = 1


@dataclass
class LayerTimes:
    """One prunable layer's latency at every grid level."""

    name: str
    module: str
    kind: str
    shape: list[int]
    flops: int
    times_ms: list[float]


@dataclass
class Profile:
    """Per-layer latency tables of one model on one machine, batch size and core count."""

    model: dict
    hardware: dict
    engine: dict
    grid: list[float]
    layers: list[LayerTimes]
    other_ms: list[float]
    total_ms: list[float]
    created: str
    tool_version: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    notes: dict = field(default_factory=dict)

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def fixed_ms(self) -> float:
        """Time outside the prunable layers: the median over levels of the time after the last layer."""
        return statistics.median(self.other_ms)

    @property
    def dense_ms(self) -> float:
        """Predicted dense latency: the fixed time plus every layer at its dense time."""
        return self.fixed_ms + sum(layer.times_ms[0] for layer in self.layers)

    @property
    def batch_size(self) -> int:
        return int(self.model["batch_size"])

    @property
    def cores(self) -> int:
        return int(self.engine["num_cores"])

    def to_dict(self) -> dict:
        return asdict(self)

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
    if data.get("format_version") != FORMAT_VERSION:
        raise SpdyError(f"format_version {data.get('format_version')!r} is not supported (expected {FORMAT_VERSION})")
    for key in ("model", "hardware", "engine"):
        if not isinstance(data.get(key), dict):
            raise SpdyError(f"'{key}' must be an object")
    for key in ("graph_hash", "batch_size", "spec"):
        if key not in data["model"]:
            raise SpdyError(f"'model.{key}' is missing")
    if "num_cores" not in data["engine"]:
        raise SpdyError("'engine.num_cores' is missing")
    grid = _floats(data.get("grid"), "grid")
    validate_grid(grid)
    levels = len(grid)
    other = _times(data.get("other_ms"), "other_ms", levels)
    total = _times(data.get("total_ms"), "total_ms", levels)
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
        times = _times(raw.get("times_ms"), f"layer {name!r} times_ms", levels)
        layers.append(
            LayerTimes(name, str(raw.get("module", "")), str(raw.get("kind", "")), list(raw.get("shape", [])),
                       int(raw.get("flops", 0)), times)
        )
    return Profile(
        model=data["model"], hardware=data["hardware"], engine=data["engine"], grid=grid, layers=layers,
        other_ms=other, total_ms=total, created=str(data.get("created", "")),
        tool_version=str(data.get("tool_version", "")), notes=data.get("notes") or {},
    )


def _floats(values: object, what: str) -> list[float]:
    if not isinstance(values, list) or not values:
        raise SpdyError(f"'{what}' must be a non-empty list of numbers")
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpdyError(f"'{what}' holds {value!r}, not a finite number")
        result.append(float(value))
    return result


def _times(values: object, what: str, levels: int) -> list[float]:
    result = _floats(values, what)
    if len(result) != levels:
        raise SpdyError(f"{what} has {len(result)} values for {levels} grid levels")
    if any(value < 0 for value in result):
        raise SpdyError(f"{what} holds a negative time")
    return result
