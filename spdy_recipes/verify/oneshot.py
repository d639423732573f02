"""One-shot magnitude pruning of named weights to exact sparsities."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SpdyError


def _parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters by their SparseML name (module path + direct parameter name)."""
    return {
        f"{module_name}.{param_name}": param
        for module_name, module in model.named_modules()
        for param_name, param in module.named_parameters(recurse=False)
    }


def magnitude_prune(model: nn.Module, sparsities: dict[str, float]) -> None:
    """Zero the smallest-magnitude ``round(s * numel)`` entries of each named weight, in place."""
    params = _parameters(model)
    missing = [name for name in sparsities if name not in params]
    if missing:
        raise SpdyError(f"model has no layer(s) {', '.join(missing[:5])}")
    with torch.no_grad():
        for name, sparsity in sparsities.items():
            weight = params[name]
            count = int(round(sparsity * weight.numel()))
            if count == 0:
                continue
            order = weight.abs().flatten().argsort(stable=True)
            weight.view(-1)[order[:count]] = 0.0


def weight_sparsity(model: nn.Module, names: list[str]) -> dict[str, float]:
    """The fraction of exact zeros in each named weight."""
    params = _parameters(model)
    return {name: float((params[name] == 0).sum()) / params[name].numel() for name in names}
