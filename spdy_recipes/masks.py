"""Magnitude masks: which entries of a weight survive at a given sparsity."""

from __future__ import annotations

import torch


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A boolean keep-mask of ``weight``'s shape without its ``round(sparsity * numel)`` smallest |w|
    (ties broken by position, so the same weight always gives the same mask)."""
    count = int(round(sparsity * weight.numel()))
    keep = torch.ones(weight.numel(), dtype=torch.bool)
    if count > 0:
        order = weight.detach().abs().flatten().argsort(stable=True)
        keep[order[:count]] = False
    return keep.view(weight.shape)
