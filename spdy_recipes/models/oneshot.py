"""Magnitude masks (which entries of a weight survive at a given sparsity) and one-shot magnitude pruning of
named weights to exact sparsities."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SpdyError
from .layers import parameters_by_name


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A boolean keep-mask of ``weight``'s shape without its ``round(sparsity * numel)`` smallest |w|
    (ties broken by position, so the same weight always gives the same mask)."""
    count = int(round(sparsity * weight.numel()))
    keep = torch.ones(weight.numel(), dtype=torch.bool)
    if count > 0:
        order = weight.detach().abs().flatten().argsort(stable=True)
        keep[order[:count]] = False
    return keep.view(weight.shape)


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
