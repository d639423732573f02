"""Time a whole model in DeepSparse with one kernel sparsity imposed on every prunable layer."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")


@dataclass(frozen=True)
class EngineOp:
    """One engine operation: its time and the ONNX outputs it computes (fused ops list several)."""

    name: str
    time_ms: float
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class EngineRun:
    """The per-operation breakdown of one analysed benchmark of the whole model."""

    total_ms: float
    ops: tuple[EngineOp, ...]


def engine_version() -> str:
    """The installed DeepSparse version."""
    import deepsparse

    return deepsparse.__version__


def analyze(
    onnx_path: str,
    inputs: list[np.ndarray],
    batch_size: int,
    num_cores: int,
    sparsity: float,
    iterations: int,
    warmup: int,
) -> EngineRun:
    """Benchmark the model with ``sparsity`` imposed on all prunable kernels (0 = the weights as they are)."""
    from deepsparse import model_debug_analysis

    result = model_debug_analysis(
        onnx_path,
        inputs,
        batch_size=batch_size,
        num_cores=num_cores,
        num_iterations=iterations,
        num_warmup_iterations=warmup,
        imposed_ks=sparsity if sparsity > 0 else None,
    )
    ops = tuple(
        EngineOp(
            info["name"],
            float(info["average_run_time_in_ms"]),
            tuple(o for o in info["canonical_name"].split(",") if o and o != "<none>"),
        )
        for info in result["layer_info"]
    )
    return EngineRun(float(result["average_total_time"]), ops)
