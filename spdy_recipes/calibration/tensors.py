"""``.pt`` and ``.npy`` files: a tensor, or a dict of the model's inputs and optional labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import SpdyError, first_line
from ..models import ModelBundle
from .sets import CalibrationSet, Request, pick, shape_text, subset


def from_tensor_file(path: Path, request: Request) -> tuple[CalibrationSet, CalibrationSet]:
    inputs, labels = _tensor_inputs(_read_tensor_file(path), path, request.bundle)
    count = len(next(iter(inputs.values())))
    calibration, held_out = pick(count, request, str(path))
    return (
        subset(inputs, labels, calibration, f"{request.samples} of {count} samples from {path}"),
        subset(inputs, labels, held_out, f"{request.holdout} of {count} samples from {path}"),
    )


def _read_tensor_file(path: Path) -> object:
    try:
        if path.suffix.lower() == ".npy":
            return torch.from_numpy(np.load(path, allow_pickle=False))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and numpy raise many types for a corrupt or unsupported file
        raise SpdyError(f"cannot read calibration tensors {path}: {first_line(exc)}") from None


def _tensor_inputs(
    data: object, path: Path, bundle: ModelBundle
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """The model's inputs (and labels) from a loaded tensor or dict, checked against the model."""
    names = list(bundle.inputs)
    if isinstance(data, torch.Tensor):
        if len(names) != 1:
            raise SpdyError(
                f"{path} holds one tensor, but the {bundle.kind} model takes {', '.join(names)}: "
                "save a dict of them with torch.save (.pt)"
            )
        data = {names[0]: data}
    if not isinstance(data, dict):
        raise SpdyError(f"{path} holds a {type(data).__name__}: expected a tensor or a dict of tensors")
    alias = next((key for key in ("inputs", "input") if key in data), None)
    if len(names) == 1 and names[0] not in data and alias:
        data = {**data, names[0]: data[alias]}
    missing = [name for name in names if name not in data]
    if missing:
        raise SpdyError(
            f"{path} lacks {', '.join(missing)}: the model takes {', '.join(names)} "
            f"(keys found: {', '.join(map(str, data)) or 'none'})"
        )
    inputs = {name: _check_tensor(data[name], name, path, bundle) for name in names}
    labels = None if data.get("labels") is None else _check_labels(data["labels"], path)
    counts = sorted({len(t) for t in inputs.values()} | ({len(labels)} if labels is not None else set()))
    if len(counts) > 1:
        raise SpdyError(f"{path}: its inputs and labels differ in their number of samples ({counts})")
    return inputs, labels


def _check_tensor(value: object, name: str, path: Path, bundle: ModelBundle) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise SpdyError(f"{path}: {name!r} is a {type(value).__name__}, not a tensor")
    if tuple(value.shape[1:]) != bundle.input_shape:
        raise SpdyError(
            f"{path}: {name!r} has shape {shape_text(tuple(value.shape))}, but the model takes "
            f"N,{shape_text(bundle.input_shape)} (N samples; see --input-shape)"
        )
    expected = bundle.inputs[name].dtype
    if value.is_floating_point() and not expected.is_floating_point:
        raise SpdyError(f"{path}: {name!r} holds {value.dtype} values, but the model takes {expected}")
    return value.to(expected)


def _check_labels(value: object, path: Path) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dim() != 1 or value.is_floating_point():
        raise SpdyError(f"{path}: 'labels' must be a 1-D tensor of integer class indices")
    return value.to(torch.int64)
