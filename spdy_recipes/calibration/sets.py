"""A calibration split (``CalibrationSet``), the caller's request, and the seeded choice of rows shared by the
tensor and text sources."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SpdyError
from ..models import ModelBundle


@dataclass
class CalibrationSet:
    """N samples shaped like a model's inputs (leading dimension N), optional int64 labels, and their origin."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor | None
    source: str

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def batches(self, batch_size: int) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor | None]]:
        """The samples in order, ``batch_size`` at a time (the last batch may be smaller)."""
        if batch_size < 1:
            raise SpdyError(f"calibration batch size must be at least 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            window = slice(start, start + batch_size)
            labels = None if self.labels is None else self.labels[window]
            yield {name: tensor[window] for name, tensor in self.inputs.items()}, labels

    def to(self, device: torch.device) -> CalibrationSet:
        """The same samples and labels on ``device`` (itself when they are there already)."""
        if all(tensor.device == device for tensor in self.inputs.values()):
            return self
        labels = None if self.labels is None else self.labels.to(device)
        return CalibrationSet({name: tensor.to(device) for name, tensor in self.inputs.items()}, labels, self.source)

    def to_cpu(self) -> CalibrationSet:
        """The same samples on the CPU."""
        return self.to(torch.device("cpu"))

    def fingerprint(self) -> str:
        """A sha256 over the inputs' names, dtypes, shapes and bytes, and the labels: a cache key."""
        digest = hashlib.sha256()
        tensors = [(f"input {name}", self.inputs[name]) for name in sorted(self.inputs)]
        for name, tensor in tensors + ([("labels", self.labels)] if self.labels is not None else []):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


@dataclass
class Request:
    """What the caller asked for: the model, the two split sizes, and the seeded generator."""

    bundle: ModelBundle
    samples: int
    holdout: int
    rng: np.random.Generator

    @property
    def total(self) -> int:
        return self.samples + self.holdout


def pick(count: int, request: Request, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded, disjoint row indices for the two splits; fewer than ``samples + holdout`` rows is a SpdyError."""
    if count < request.total:
        raise SpdyError(
            f"{where} has {count} samples, fewer than the {request.total} needed "
            f"({request.samples} calibration + {request.holdout} held-out)"
        )
    order = torch.from_numpy(request.rng.permutation(count))
    return order[:request.samples], order[request.samples:request.total]


def subset(
    inputs: dict[str, torch.Tensor], labels: torch.Tensor | None, rows: torch.Tensor, source: str
) -> CalibrationSet:
    return CalibrationSet(
        {name: tensor[rows] for name, tensor in inputs.items()}, None if labels is None else labels[rows], source
    )


def shape_text(shape: tuple[int, ...]) -> str:
    return ",".join(map(str, shape))
