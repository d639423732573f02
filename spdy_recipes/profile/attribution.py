"""Split engine operation times over PyTorch layers."""

from __future__ import annotations

from .deepsparse_timer import EngineRun


def attribute(run: EngineRun, output_module: dict[str, str], module_flops: dict[str, int]) -> tuple[dict[str, float], float]:
    """Per-module milliseconds, and the time of operations that compute no prunable layer.

    An operation that fuses several layers (a DeepSparse "pyramid") is split in proportion to their
    dense FLOPs; anything else it fuses (pooling, bias adds, norms) is charged to those layers.
    """
    per_module = {module: 0.0 for module in module_flops}
    other = 0.0
    for op in run.ops:
        modules = sorted({output_module[o] for o in op.outputs if o in output_module})
        if not modules:
            other += op.time_ms
            continue
        weights = [max(module_flops[m], 1) for m in modules]
        total = sum(weights)
        for module, weight in zip(modules, weights):
            per_module[module] += op.time_ms * weight / total
    return per_module, other
