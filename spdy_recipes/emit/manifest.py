"""The recipe manifest: which models x hardware x speedups x methods a repository keeps recipes for.

``recipes/manifest.yaml``::

    format: spdy-recipes/manifest
    hardware_root: hardware          # relative to the manifest
    entries:
      - model: torchvision:mobilenet_v2
        name: mobilenet_v2           # folder of its recipes (default: the model's slug)
        batch_size: 16
        hardware: [xeon-avx512-2core]
        speedups: [1.5, 2.0]
        methods: [acdc, gmp]
        exclude: []                  # also: include, input_shape, num_classes, sensitivity, quantile,
                                     # epochs, cores

Recipes go to ``<manifest folder>/<name>/<hardware>/<method>-<speedup>x.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpdyError
from ..files import read_yaml
from ..solve.planner import DEFAULT_QUANTILE
from .recipe import METHODS

FORMAT = "spdy-recipes/manifest"
_ENTRY_KEYS = {"model", "name", "batch_size", "input_shape", "num_classes", "hardware", "speedups", "methods",
               "include", "exclude", "sensitivity", "quantile", "epochs", "cores"}


@dataclass(kw_only=True, frozen=True)
class RecipeJob:
    """One recipe the manifest asks for."""

    model: str
    name: str
    batch_size: int
    input_shape: str | None
    num_classes: int | None
    hardware: str
    cores: int | None
    speedup: float
    method: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    sensitivity: str | None
    quantile: float
    epochs: float
    output: Path


def load_manifest(path: str | Path) -> tuple[list[RecipeJob], Path]:
    """Every job of the manifest at ``path``, and the hardware root it names."""
    path = Path(path)
    data = read_yaml(path, "manifest")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SpdyError(f"malformed manifest {path}: expected 'format: {FORMAT}'")
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise SpdyError(f"malformed manifest {path}: 'entries' must be a non-empty list")
    base = path.parent
    jobs = [job for index, entry in enumerate(entries) for job in _entry_jobs(entry, index, base, path)]
    outputs = [job.output for job in jobs]
    if len(set(outputs)) != len(outputs):
        raise SpdyError(f"malformed manifest {path}: two entries write the same recipe file")
    return jobs, base / str(data.get("hardware_root", "hardware"))


def _entry_jobs(entry: object, index: int, base: Path, path: Path) -> list[RecipeJob]:
    where = f"malformed manifest {path}: entries[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
        raise SpdyError(f"{where} needs a 'model' spec")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise SpdyError(f"{where} has unknown key(s) {', '.join(unknown)}")
    hardware, speedups, methods = (_list(entry, key, where) for key in ("hardware", "speedups", "methods"))
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise SpdyError(f"{where} has unknown method(s) {', '.join(map(str, bad))} (known: {', '.join(METHODS)})")
    if any(isinstance(s, bool) or not isinstance(s, (int, float)) or s <= 1 for s in speedups):
        raise SpdyError(f"{where} speedups must be numbers above 1")
    classes = entry.get("num_classes")
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise SpdyError(f"{where} num_classes must be a positive integer")
    model = entry["model"]
    name = str(entry.get("name") or model.split(":", 1)[-1].replace("/", "-"))
    shape = entry.get("input_shape")
    return [
        RecipeJob(
            model=model, name=name, batch_size=int(entry.get("batch_size", 16)),
            input_shape=None if shape is None else str(shape), num_classes=classes, hardware=str(hw),
            cores=entry.get("cores"), speedup=float(speedup), method=method,
            include=tuple(entry.get("include") or ()), exclude=tuple(entry.get("exclude") or ()),
            sensitivity=entry.get("sensitivity"), quantile=float(entry.get("quantile", DEFAULT_QUANTILE)),
            epochs=float(entry.get("epochs", 20.0)),
            output=base / name / str(hw) / f"{method}-{float(speedup)}x.yaml",
        )
        for hw in hardware for speedup in speedups for method in methods
    ]


def _list(entry: dict, key: str, where: str) -> list:
    value = entry.get(key)
    if not isinstance(value, list) or not value:
        raise SpdyError(f"{where} '{key}' must be a non-empty list")
    return value
