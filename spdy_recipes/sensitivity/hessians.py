"""Input second moments (X Xᵀ) of each layer on calibration data: what layer-wise reconstruction needs.

A convolution's input is unfolded into the patches its kernel sees, so that every layer is a matrix
product ``W @ x`` with ``W`` of shape (out, in·kh·kw) and the Hessian of its squared output error is X Xᵀ.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..calibration import CalibrationSet
from ..errors import SpdyError
from ..models.layers import PrunableLayer
from .outputs import model_output


def reconstructible(module: nn.Module) -> bool:
    """Layers whose output is a plain matrix product of the weight: Linear and ungrouped 2-D convolutions."""
    if isinstance(module, nn.Conv2d):
        return module.groups == 1 and isinstance(module.padding, tuple) and module.padding_mode == "zeros"
    return isinstance(module, nn.Linear)


def weight_matrix(weight: torch.Tensor) -> torch.Tensor:
    """The weight as the (out, in) matrix that multiplies an unfolded input."""
    return weight.reshape(weight.shape[0], -1)


def _columns(module: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The layer's input as (in, samples) columns."""
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):  # F.unfold takes the padding as numbers only
            raise SpdyError(f"a Conv2d with padding={module.padding!r} is not supported for Hessians; give the "
                            "padding as numbers")
        patches = F.unfold(inputs, module.kernel_size, module.dilation, module.padding, module.stride)
        return patches.transpose(0, 1).reshape(patches.shape[1], -1)
    return inputs.reshape(-1, inputs.shape[-1]).T


def collect_hessians(model: nn.Module, layers: list[PrunableLayer], calibration: CalibrationSet, batch_size: int,
                     log: Callable[[str], None] = lambda _: None) -> dict[str, torch.Tensor]:
    """X Xᵀ / samples (float64) of every reconstructible layer's input over the calibration set."""
    modules = dict(model.named_modules())
    chosen = [layer for layer in layers if reconstructible(modules[layer.module])]
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook_for(name: str):
        def hook(module, args, _output):
            columns = _columns(module, args[0].detach()).double()
            sums[name] = sums.get(name, 0) + columns @ columns.T
            counts[name] = counts.get(name, 0) + columns.shape[1]

        return hook

    handles = [modules[layer.module].register_forward_hook(hook_for(layer.name)) for layer in chosen]
    try:
        with torch.no_grad():
            for index, (inputs, _labels) in enumerate(calibration.batches(batch_size)):
                model_output(model, inputs)
                log(f"[database] layer inputs: batch {index + 1}/{-(-len(calibration) // batch_size)}")
    finally:
        for handle in handles:
            handle.remove()
    return {name: sums[name] / counts[name] for name in sums}
