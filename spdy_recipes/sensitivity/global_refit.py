"""Global reconstruction (SPDY's "gAP"): after stitching, re-fit all kept weights together against dense.

Layer-wise re-fitting sees dense inputs; once every layer is pruned, errors compound. Here the pruned
model runs on calibration data and every selected layer's output is pulled towards the dense model's
output of the same layer (normalised squared error, summed over layers), with Adam on the kept weights
only: pruned entries get no gradient and stay exactly zero. BatchNorm statistics stay frozen.
"""

from __future__ import annotations

import copy
import functools
import operator
from collections.abc import Callable

import torch
from torch import nn

from ..calibration import CalibrationSet
from ..models.layers import parameters_by_name
from .outputs import model_output

DEFAULT_LEARNING_RATE = 1e-4


def _capture(model: nn.Module, modules: list[str], store: dict[str, torch.Tensor]) -> list:
    named = dict(model.named_modules())

    def hook_for(name: str):
        def hook(_module, _args, output):
            store[name] = output[0] if isinstance(output, (tuple, list)) else output

        return hook

    return [named[name].register_forward_hook(hook_for(name)) for name in modules]


def global_refit(model: nn.Module, dense: nn.Module, names: list[str], data: CalibrationSet, batch_size: int,
                 steps: int, learning_rate: float = DEFAULT_LEARNING_RATE,
                 log: Callable[[str], None] = lambda _: None) -> list[float]:
    """Run ``steps`` Adam steps over the calibration batches (cycling); returns the loss per step.

    ``names`` are weight names (``<module>.weight``); ``dense`` is an unpruned copy of ``model``."""
    params = parameters_by_name(model)
    weights = [params[name] for name in names]
    masks = [(w != 0).float() for w in weights]
    modules = [name.rsplit(".", 1)[0] for name in names]
    trainable = {id(w) for w in weights}
    frozen = [p for p in model.parameters() if id(p) not in trainable and p.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(False)
    optimizer = torch.optim.Adam(weights, lr=learning_rate)
    pruned_out: dict[str, torch.Tensor] = {}
    dense_out: dict[str, torch.Tensor] = {}
    handles = _capture(model, modules, pruned_out) + _capture(dense, modules, dense_out)
    batches = list(data.batches(batch_size))
    losses = []
    try:
        for step in range(steps):
            inputs, _ = batches[step % len(batches)]
            with torch.no_grad():
                model_output(dense, inputs)
            model_output(model, inputs)
            loss = functools.reduce(operator.add, [
                ((pruned_out[m] - dense_out[m]) ** 2).sum() / (dense_out[m] ** 2).sum().clamp_min(1e-12)
                for m in modules])
            optimizer.zero_grad()
            loss.backward()
            for weight, mask in zip(weights, masks, strict=True):
                if weight.grad is not None:  # None: the weight took no part in the loss (Adam skips it too)
                    weight.grad.mul_(mask)
            optimizer.step()
            with torch.no_grad():
                for weight, mask in zip(weights, masks, strict=True):
                    weight.mul_(mask)
            losses.append(float(loss.detach()))
            log(f"[global refit] step {step + 1}/{steps}: loss {losses[-1]:.5g}")
    finally:
        for handle in handles:
            handle.remove()
        for parameter in frozen:
            parameter.requires_grad_(True)
        optimizer.zero_grad(set_to_none=True)
    return losses


def dense_copy(model: nn.Module) -> nn.Module:
    """An unpruned reference to refit against (taken while ``model`` is dense)."""
    return copy.deepcopy(model).eval()
