"""The reconstruction database: every selected layer's weights at every grid level, cached on disk.

Level k of a layer is its magnitude mask at ``grid[k]`` sparsity with the kept weights re-fitted to the
dense layer's outputs (``obs``) or left as they are (``magnitude``). Stored per level as a packed bit
mask plus the kept values, so the file is about (1 + Σ densities) times the layers' size.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..calibration import CalibrationSet
from ..errors import SpdyError
from ..files import atomic_torch_save, cache_dir
from ..models import ModelBundle, PrunableLayer
from ..models.fingerprint import graph_hash
from ..models.layers import parameters_by_name
from ..models.oneshot import magnitude_mask
from ..progress import progress
from .hessians import collect_hessians, weight_matrix
from .reconstruct import LayerReconstructor

DATABASES = ("obs", "magnitude")
FORMAT_VERSION = 1
CHUNK_ELEMENTS = 1 << 24  # levels reconstructed together per layer, bounded in memory


@dataclass
class PackedWeight:
    """One layer at one level: a packed keep-mask and the kept values in flat order."""

    mask: np.ndarray
    values: torch.Tensor

    @classmethod
    def pack(cls, weight: torch.Tensor, keep: torch.Tensor) -> PackedWeight:
        """Pack ``weight`` (any device) where ``keep`` holds; the packed form lives on the CPU."""
        flat_keep = keep.flatten()
        return cls(np.packbits(flat_keep.cpu().numpy()), weight.flatten()[flat_keep].cpu().clone())

    def unpack(self, shape: torch.Size) -> torch.Tensor:
        count = int(np.prod(shape))
        keep = torch.from_numpy(np.unpackbits(self.mask, count=count).astype(bool))
        weight = torch.zeros(count)
        weight[keep] = self.values
        return weight.view(shape)


@dataclass(kw_only=True)
class Database:
    """Per-layer weights at every grid level, and each level's relative output error on calibration data."""

    key: str
    method: str
    grid: list[float]
    shapes: dict[str, torch.Size]
    errors: dict[str, list[float]]  # after reconstruction (or magnitude alone)
    magnitude_errors: dict[str, list[float]]
    weights: dict[str, list[PackedWeight]]
    mask_type: str = "unstructured"  # the pattern of every level's zeros (``models.oneshot.magnitude_mask``)

    @property
    def layer_names(self) -> list[str]:
        return list(self.weights)

    def weight(self, name: str, level: int) -> torch.Tensor:
        return self.weights[name][level].unpack(self.shapes[name])

    def save(self, path: Path) -> None:
        """Write atomically (torch format)."""
        payload = {"format_version": FORMAT_VERSION, "key": self.key, "method": self.method, "grid": self.grid,
                   "shapes": {n: list(s) for n, s in self.shapes.items()}, "errors": self.errors,
                   "magnitude_errors": self.magnitude_errors,
                   "weights": {n: [(torch.from_numpy(np.require(p.mask, requirements="W")), p.values)
                                   for p in levels]  # (a mask from Ray's object store is read-only)
                               for n, levels in self.weights.items()},
                   "mask_type": self.mask_type}
        atomic_torch_save(payload, path)

    @classmethod
    def load(cls, path: Path) -> Database:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            if data.get("format_version") != FORMAT_VERSION:
                raise ValueError("another format version")
            return cls(key=data["key"], method=data["method"], grid=list(data["grid"]),
                       shapes={n: torch.Size(s) for n, s in data["shapes"].items()}, errors=data["errors"],
                       magnitude_errors=data["magnitude_errors"],
                       weights={n: [PackedWeight(m.numpy(), v) for m, v in levels]
                                for n, levels in data["weights"].items()},
                       mask_type=str(data.get("mask_type", "unstructured")))
        except Exception as exc:  # a truncated or foreign file: torch raises many types
            raise SpdyError(f"malformed database {path}: {exc}") from None


def weights_hash(bundle: ModelBundle) -> str:
    """A hash of every weight and buffer value."""
    digest = hashlib.sha256()
    for name, tensor in bundle.module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:32]


def database_key(bundle: ModelBundle, layers: list[PrunableLayer], grid: list[float], calibration: CalibrationSet,
                 method: str, mask_type: str = "unstructured") -> str:
    """What a database depends on: model graph and weights, calibration data, grid, method, layers, mask type."""
    payload = {"graph": graph_hash(bundle), "weights": weights_hash(bundle), "data": calibration.fingerprint(),
               "grid": [round(s, 6) for s in grid], "method": method, "layers": [layer.name for layer in layers],
               "format_version": FORMAT_VERSION,
               **({"mask_type": mask_type} if mask_type != "unstructured" else {})}  # (older keys unchanged)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


LayerRows = tuple[torch.Size, list[float], list[float], list["PackedWeight"]]  # ``build_layer``'s result
LayerJob = tuple[str, torch.Tensor, "torch.Tensor | None"]  # a layer's name, weight and Hessian (or None)
# (jobs, grid, method, mask type, step(what, amount)) -> rows by layer name: how the layers are built
LayerBuilder = Callable[[list[LayerJob], list[float], str, str, Callable[[str, int], None]], dict[str, LayerRows]]


def build_locally(jobs: list[LayerJob], grid: list[float], method: str, mask_type: str,
                  step: Callable[[str, int], None]) -> dict[str, LayerRows]:
    """Every layer's rows here, one after another (``build_layer``)."""
    rows = {}
    for name, weight, hessian in jobs:
        rows[name] = build_layer(weight, hessian, grid, method, mask_type)
        step(f"{method} {name}", weight.numel())
    return rows


def build_database(bundle: ModelBundle, layers: list[PrunableLayer], grid: list[float],
                   calibration: CalibrationSet, method: str, key: str,
                   log: Callable[[str], None] = lambda _: None, mask_type: str = "unstructured",
                   builder: LayerBuilder = build_locally) -> Database:
    """Mask every layer at every level and (``obs``) re-fit the kept weights; record each level's error. The
    layers' input Hessians are collected here; ``builder`` builds the layers (here, or one Ray task per layer:
    ``cluster.database``)."""
    if method not in DATABASES:
        raise SpdyError(f"unknown --database {method!r}: expected one of {', '.join(DATABASES)}")
    hessians = collect_hessians(bundle.module, layers, calibration, bundle.batch_size, log)
    params = parameters_by_name(bundle.module)
    jobs = [(layer.name, params[layer.name].detach().float(), hessians.get(layer.name)) for layer in layers]
    sizes = {layer.name: params[layer.name].numel() for layer in layers}  # a layer's cost grows with its size
    with progress(sum(sizes.values()), "database", log, weighted=True) as step:
        rows = builder(jobs, grid, method, mask_type, step)
    shapes, errors, magnitude_errors, weights = {}, {}, {}, {}
    for layer in layers:  # in the layers' order, however they were built
        name = layer.name
        shapes[name], errors[name], magnitude_errors[name], weights[name] = rows[name]
    return Database(key=key, method=method, grid=list(grid), shapes=shapes, errors=errors,
                    magnitude_errors=magnitude_errors, weights=weights, mask_type=mask_type)


def build_layer(weight: torch.Tensor, hessian: torch.Tensor | None, grid: list[float],
                method: str, mask_type: str = "unstructured") -> LayerRows:
    """One layer's rows of the database: its shape, its error at every level (after the re-fit, and with the
    mask alone; relative output errors, SPDY section 4) and its packed weights at every level. ``weight``:
    the layer's weight (out, in[, kh, kw]); ``hessian``: its input second moment X Xᵀ / samples (in·kh·kw
    square, ``hessians.collect_hessians``), None for a layer that is no plain matrix product."""
    dense = weight_matrix(weight)
    keeps = [weight_matrix(magnitude_mask(weight, sparsity, mask_type)) for sparsity in grid]
    reconstructor = LayerReconstructor(hessian) if hessian is not None else None
    masked = [dense * keep for keep in keeps]
    refit = reconstructor is not None and method == "obs"
    fitted = _reconstruct_levels(reconstructor, dense, keeps) if refit and reconstructor is not None else masked
    if reconstructor is not None:
        magnitude_errors = [reconstructor.relative_error(dense, m) for m in masked]
        errors = [reconstructor.relative_error(dense, f) for f in fitted] if refit else magnitude_errors
    else:  # not a plain matrix product (e.g. a grouped convolution): relative weight error instead
        errors = magnitude_errors = [float(((dense - f) ** 2).sum() / (dense ** 2).sum().clamp_min(1e-30))
                                     for f in fitted]
    packed = [PackedWeight.pack(f.view(weight.shape), k.view(weight.shape)) for f, k in zip(fitted, keeps, strict=True)]
    return weight.shape, errors, magnitude_errors, packed


def _reconstruct_levels(reconstructor: LayerReconstructor, dense: torch.Tensor,
                        keeps: list[torch.Tensor]) -> list[torch.Tensor]:
    """Re-fit every level, several levels stacked into one matrix per pass."""
    per_chunk = max(1, CHUNK_ELEMENTS // dense.numel())
    fitted: list[torch.Tensor] = []
    for start in range(0, len(keeps), per_chunk):
        chunk = keeps[start:start + per_chunk]
        stacked = reconstructor.reconstruct(dense.repeat(len(chunk), 1), torch.cat(chunk))
        fitted.extend(stacked.split(dense.shape[0]))
    return fitted


def obtain_database(bundle: ModelBundle, layers: list[PrunableLayer], grid: list[float],
                    calibration: CalibrationSet, method: str,
                    log: Callable[[str], None] = lambda _: None,
                    mask_type: str = "unstructured",
                    builder: LayerBuilder = build_locally) -> tuple[Database, Path, bool]:
    """The cached database for these inputs (``mask_type``: the pattern of every level's zeros), or a new one
    built (by ``builder``) and cached. Returns (database, path, hit)."""
    key = database_key(bundle, layers, grid, calibration, method, mask_type)
    path = cache_dir() / "databases" / f"{bundle.slug}-{method}-{key}.pt"
    if path.is_file():
        return Database.load(path), path, True
    database = build_database(bundle, layers, grid, calibration, method, key, log, mask_type, builder)
    database.save(path)
    return database, path, False
