"""Prunable layers, named exactly as SparseML resolves them (``named_modules`` plus direct parameters)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import SpdyError
from .call import run_model


@dataclass(frozen=True)
class PrunableLayer:
    """One weight that a pruning recipe may target."""

    name: str  # the SparseML parameter name, e.g. "layer1.0.conv1.weight"
    module: str  # the module path, e.g. "layer1.0.conv1"
    kind: str  # "conv" or "linear"
    shape: tuple[int, ...]


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":  # HF GPT-2 style Conv1D
        return "linear"
    return None


def _dense_reason(module_name: str, module: nn.Module, owners: dict[int, list[str]]) -> str | None:
    """Why a Conv or Linear layer must stay dense, or None if a recipe may prune it."""
    from torch.nn.utils import parametrize

    if parametrize.is_parametrized(module, "weight"):
        return "its weight is computed by a parametrization (e.g. weight_norm), which a recipe cannot mask"
    if hasattr(module, "weight_orig"):
        return ("pruned earlier with torch.nn.utils.prune and not removed (weight_orig/weight_mask): "
                "call prune.remove on it to prune it here")
    weight = getattr(module, "weight", None)
    if not isinstance(weight, nn.Parameter):
        return "its weight is not a Parameter (computed in forward)"
    if not weight.requires_grad:
        return "frozen (requires_grad=False): training cannot adjust it"
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1:
        if module.groups == module.in_channels and not module.transposed:
            return "depthwise convolution: DeepSparse runs it dense"
        return (f"grouped convolution (groups={module.groups}): DeepSparse runs it dense, in its generic "
                "fallback (a \"Naive Subgraph\" in its analysis)")
    tied = [name for name in owners.get(id(weight), []) if name != f"{module_name}.weight"]
    if tied:
        return f"its weight is tied to {', '.join(tied[:3])} (the same tensor): pruning it would prune that too"
    return None


def layer_survey(model: nn.Module) -> tuple[list[PrunableLayer], dict[str, str]]:
    """The prunable layers of ``model`` in ``named_modules`` order, and the Conv/Linear weights (plus fused
    attention projections) left dense, each with the reason (name -> one sentence)."""
    owners: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        owners.setdefault(id(param), []).append(name)
    layers, left_dense = [], {}
    for module_name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            for attribute in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                if isinstance(getattr(module, attribute, None), nn.Parameter):
                    left_dense[f"{module_name}.{attribute}"] = (
                        "fused attention projection of nn.MultiheadAttention (a Parameter, not a Linear module)")
        kind = _kind(module)
        if kind is None:
            continue
        reason = _dense_reason(module_name, module, owners)
        weight = getattr(module, "weight", None)
        if reason is None:
            assert isinstance(weight, nn.Parameter)  # _dense_reason gives None only for a Parameter weight
            layers.append(PrunableLayer(f"{module_name}.weight", module_name, kind, tuple(weight.shape)))
        else:
            left_dense[f"{module_name}.weight"] = reason
    return layers, left_dense


def prunable_layers(model: nn.Module) -> list[PrunableLayer]:
    """Every Conv and Linear weight of ``model`` that a recipe may prune, in ``named_modules`` order:
    not depthwise or grouped, frozen, tied to another parameter or computed (``layer_survey`` says why)."""
    return layer_survey(model)[0]


QUANTIZATION_WRAPPERS = ("QuantWrapper", "QATWrapper")  # torch's and SparseML's: they hold the layer as ``.module``


def parameters_by_name(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every parameter by its SparseML name (module path + direct parameter name). A layer that quantization-aware
    training wrapped (``layer1.0.conv1`` became ``layer1.0.conv1.module``) answers to its name from before as
    well, the one the recipe's pruning modifiers and sparsity targets use."""
    named = {
        f"{module_name}.{param_name}": param
        for module_name, module in model.named_modules()
        for param_name, param in module.named_parameters(recurse=False)
    }
    for module_name, module in model.named_modules():
        inner = getattr(module, "module", None)
        if type(module).__name__ in QUANTIZATION_WRAPPERS and isinstance(inner, nn.Module):
            for param_name, param in inner.named_parameters(recurse=False):
                named.setdefault(f"{module_name}.{param_name}", param)
    return named


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
    """Dense multiply-add FLOPs (x2) of each layer for one forward pass over ``inputs``, summed over every call
    of a module that runs several times; 0 for a layer the forward pass never calls."""
    modules = dict(model.named_modules())
    flops: dict[str, int] = {}
    handles = []

    def hook_for(layer: PrunableLayer):
        def hook(module, args, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            if getattr(module, "transposed", False):
                # ConvTranspose: weight (Cin, Cout/groups, k...), every input element feeds Cout/groups*k*k outputs
                count = _prod(layer.shape[1:]) * args[0].numel()
            else:  # per output element: Cin/groups*k*k for conv, in_features for linear (HF Conv1D is transposed)
                per_output = layer.shape[0] if type(module).__name__ == "Conv1D" else _prod(layer.shape[1:])
                count = per_output * out.numel()
            flops[layer.name] = flops.get(layer.name, 0) + 2 * count

        return hook

    for layer in layers:
        parent = modules.get(layer.module.rpartition(".")[0])
        if isinstance(parent, nn.MultiheadAttention) and layer.module.endswith(".out_proj"):
            # MultiheadAttention applies out_proj's weight itself, without calling the module: count it on the
            # attention's output, which is out_proj's
            handles.append(parent.register_forward_hook(hook_for(layer)))
        else:
            handles.append(modules[layer.module].register_forward_hook(hook_for(layer)))
    try:
        with torch.no_grad():
            run_model(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return {layer.name: flops.get(layer.name, 0) for layer in layers}


def _prod(values: tuple[int, ...]) -> int:
    result = 1
    for value in values:
        result *= value
    return result
