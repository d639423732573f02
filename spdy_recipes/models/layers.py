"""Prunable layers, named exactly as SparseML resolves them (``named_modules`` plus direct parameters)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import SpdyError


@dataclass(frozen=True)
class PrunableLayer:
    """One weight that a pruning recipe may target."""

    name: str  # the SparseML parameter name, e.g. "layer1.0.conv1.weight"
    module: str  # the module path, e.g. "layer1.0.conv1"
    kind: str  # "conv" or "linear"
    shape: tuple[int, ...]


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.modules.conv._ConvNd):
        depthwise = module.groups > 1 and module.in_channels == module.groups
        return None if depthwise else "conv"  # DeepSparse runs depthwise convolutions dense
    if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":  # HF GPT-2 style Conv1D
        return "linear"
    return None


def prunable_layers(model: nn.Module) -> list[PrunableLayer]:
    """Every Conv (but depthwise) and Linear weight of ``model``, in ``named_modules`` order."""
    layers = []
    for module_name, module in model.named_modules():
        kind = _kind(module)
        weight = getattr(module, "weight", None)
        if kind is None or not isinstance(weight, nn.Parameter):
            continue
        layers.append(PrunableLayer(f"{module_name}.weight", module_name, kind, tuple(weight.shape)))
    return layers


def parameters_by_name(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every parameter by its SparseML name (module path + direct parameter name)."""
    return {
        f"{module_name}.{param_name}": param
        for module_name, module in model.named_modules()
        for param_name, param in module.named_parameters(recurse=False)
    }


def select_names(
    names: list[str], include: list[str] | tuple[str, ...] = (), exclude: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """Keep the names that match any ``include`` regex (all if none) and no ``exclude`` regex (re.search)."""
    chosen = list(names)
    for flag, patterns, keep in (("--include", include, True), ("--exclude", exclude, False)):
        if not patterns:
            continue
        compiled = []
        for pattern in patterns:
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                raise SpdyError(f"bad {flag} regex {pattern!r}: {exc}") from None
            if not any(regex.search(name) for name in names):
                raise SpdyError(f"{flag} {pattern!r} matches no prunable layer of the model")
            compiled.append(regex)
        chosen = [name for name in chosen if any(r.search(name) for r in compiled) == keep]
    if not chosen:
        raise SpdyError("no prunable layer is left after --include/--exclude")
    return chosen


def layer_flops(model: nn.Module, inputs: dict[str, torch.Tensor], layers: list[PrunableLayer]) -> dict[str, int]:
    """Dense multiply-add FLOPs (x2) of each layer for one forward pass over ``inputs``."""
    modules = dict(model.named_modules())
    flops: dict[str, int] = {}
    handles = []

    def hook_for(layer: PrunableLayer):
        def hook(module, _args, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            # multiplies per output element: Cin/groups*k*k for conv, in_features for linear (HF Conv1D is transposed)
            per_output = layer.shape[0] if type(module).__name__ == "Conv1D" else _prod(layer.shape[1:])
            flops[layer.name] = flops.get(layer.name, 0) + 2 * per_output * out.numel()

        return hook

    for layer in layers:
        handles.append(modules[layer.module].register_forward_hook(hook_for(layer)))
    try:
        with torch.no_grad():
            model(*inputs.values())
    finally:
        for handle in handles:
            handle.remove()
    return {layer.name: flops.get(layer.name, 0) for layer in layers}


def _prod(values: tuple[int, ...]) -> int:
    result = 1
    for value in values:
        result *= value
    return result
