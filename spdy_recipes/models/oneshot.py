"""Magnitude masks (which entries of a weight survive at a given sparsity, one by one or in SparseML's blocks
of four) and one-shot magnitude pruning of named weights to those sparsities."""

from __future__ import annotations

import torch
from torch import nn

from ..deployment import MASK_TYPES
from ..errors import SpdyError
from .layers import parameters_by_name


def magnitude_mask(weight: torch.Tensor, sparsity: float, mask_type: str = "unstructured") -> torch.Tensor:
    """A boolean keep-mask of ``weight``'s shape at ``sparsity`` (a fraction).

    ``unstructured``: without the ``round(sparsity * numel)`` smallest |w| (ties broken by position, so the same
    weight always gives the same mask). ``block4``: SparseML's own block-4 mask creator
    (``FourBlockMaskCreator``, the one its ``mask_type: block4`` trains with): blocks of 4 consecutive input
    channels (dimension 1) at a fixed output channel and kernel position, scored by their mean |w|, channel
    counts that do not divide by 4 padded with the mean of the remainder; DeepSparse's INT8 sparse kernels
    skip whole blocks. Raises SpdyError for another ``mask_type``."""
    if mask_type == "unstructured":
        count = int(round(sparsity * weight.numel()))
        keep = torch.ones(weight.numel(), dtype=torch.bool, device=weight.device)
        if count > 0:
            order = weight.detach().abs().flatten().argsort(stable=True)
            keep[order[:count]] = False
        return keep.view(weight.shape)
    if mask_type == "block4":
        if sparsity <= 0:
            return torch.ones(weight.shape, dtype=torch.bool, device=weight.device)
        from sparseml.pytorch.sparsification.pruning.mask_creator import FourBlockMaskCreator

        scores = weight.detach().abs().float()
        return FourBlockMaskCreator().create_sparsity_masks([scores], float(sparsity))[0].bool()
    raise SpdyError(f"mask type must be one of {', '.join(MASK_TYPES)}, got {mask_type!r}")


def magnitude_prune(model: nn.Module, sparsities: dict[str, float], mask_type: str = "unstructured") -> None:
    """Zero the entries of each named weight that ``magnitude_mask(weight, s, mask_type)`` drops, in place."""
    params = parameters_by_name(model)
    missing = [name for name in sparsities if name not in params]
    if missing:
        raise SpdyError(f"model has no layer(s) {', '.join(missing[:5])}")
    with torch.no_grad():
        for name, sparsity in sparsities.items():
            params[name].masked_fill_(~magnitude_mask(params[name], sparsity, mask_type), 0.0)


def weight_sparsity(model: nn.Module, names: list[str]) -> dict[str, float]:
    """The fraction of exact zeros in each named weight."""
    params = parameters_by_name(model)
    return {name: float((params[name] == 0).sum()) / params[name].numel() for name in names}
