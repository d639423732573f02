"""One-shot magnitude pruning of named weights to exact sparsities."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SpdyError
from ..masks import magnitude_mask
from .layers import parameters_by_name


def magnitude_prune(model: nn.Module, sparsities: dict[str, float]) -> None:
    """Zero the smallest-magnitude ``round(s * numel)`` entries of each named weight, in place."""
    params = parameters_by_name(model)
    missing = [name for name in sparsities if name not in params]
    if missing:
        raise SpdyError(f"model has no layer(s) {', '.join(missing[:5])}")
    with torch.no_grad():
        for name, sparsity in sparsities.items():
            params[name].masked_fill_(~magnitude_mask(params[name], sparsity), 0.0)


def weight_sparsity(model: nn.Module, names: list[str]) -> dict[str, float]:
    """The fraction of exact zeros in each named weight."""
    params = parameters_by_name(model)
    return {name: float((params[name] == 0).sum()) / params[name].numel() for name in names}
