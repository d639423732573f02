"""Split engine operation times over PyTorch layers."""

from __future__ import annotations

import re

from .engine import EngineRun


def kernel_label(op_name: str, fused_layers: int) -> str:
    """The kind of kernel an op runs, without its index or sparsity: ``ks_convolution``, ``pyramid x3``."""
    kind = re.sub(r"-[0-9.]+%", "", re.sub(r"_\d+$", "", op_name))
    return f"{kind} x{fused_layers}" if fused_layers > 1 else kind


def attribute(
    run: EngineRun, output_module: dict[str, str], module_flops: dict[str, int]
) -> tuple[dict[str, float], float, dict[str, str]]:
    """Per-module milliseconds, the time left after the last layer (the fixed time), and per-module kernels.

    An operation that fuses several layers (a DeepSparse "pyramid") is split in proportion to their
    dense FLOPs; anything else it fuses (pooling, bias adds, norms) is charged to those layers.
    Operations that compute no layer (layout shuffles, attention products, input handling) are charged
    to the next layer in execution order: their cost changes with that layer's kernel (a sparse kernel
    needs other layouts), so it belongs to that layer's choice. What follows the last layer is fixed.
    """
    per_module = {module: 0.0 for module in module_flops}
    kernels = {module: "" for module in module_flops}
    pending = 0.0
    for op in run.ops:
        modules = sorted({output_module[o] for o in op.outputs if o in output_module})
        if not modules:
            pending += op.time_ms
            continue
        weights = [max(module_flops[m], 1) for m in modules]
        total = sum(weights)
        for module, weight in zip(modules, weights, strict=True):
            per_module[module] += (op.time_ms + pending) * weight / total
            kernels[module] = kernel_label(op.name, len(modules))
        pending = 0.0
    return per_module, pending, kernels


def fused_modules(run: EngineRun, output_module: dict[str, str]) -> list[list[str]]:
    """The modules that one engine operation computes together (a DeepSparse "pyramid"), for every
    operation that fuses two or more of them, in execution order."""
    groups = []
    for op in run.ops:
        modules = sorted({output_module[o] for o in op.outputs if o in output_module})
        if len(modules) > 1:
            groups.append(modules)
    return groups
