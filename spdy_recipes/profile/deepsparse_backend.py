"""The DeepSparse timing backend: per-op analysis with imposed kernel sparsity, and real engine calls."""

from __future__ import annotations

import os
import time

import numpy as np

from .engine import EngineOp, EngineRun
from .hardware import cpu_model_name

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")


class DeepSparseBackend:
    """Neural Magic's DeepSparse CPU engine (1.8, community edition)."""

    name = "deepsparse"

    def version(self) -> str:
        import deepsparse

        return deepsparse.__version__

    def describe_host(self) -> dict:
        import platform

        from deepsparse.cpu import cpu_architecture

        arch = cpu_architecture()
        return {
            "cpu_model": cpu_model_name(),
            "vendor": arch.get("vendor"),
            "architecture": arch.get("architecture"),
            "isa": arch.get("isa"),
            "vnni": bool(arch.get("vnni")),
            "bf16": bool(arch.get("bf16")),
            "sockets": arch.get("num_sockets"),
            "cores": arch.get("num_cores"),
            "threads_per_core": arch.get("threads_per_core"),
            "l3_cache_bytes": arch.get("L3_cache_size"),
            "platform": platform.platform(),
        }

    def max_cores(self) -> int:
        from deepsparse.cpu import cpu_architecture

        return int(cpu_architecture()["num_cores"])

    def analyze(self, onnx_path: str, inputs: list[np.ndarray], batch_size: int, num_cores: int,
                sparsity: float, iterations: int, warmup: int) -> EngineRun:
        from deepsparse.engine import DebugAnalysisEngine

        engine = DebugAnalysisEngine(  # what deepsparse.model_debug_analysis builds, kept to ask it one more thing
            onnx_path, batch_size=batch_size, num_cores=num_cores, num_iterations=iterations,
            num_warmup_iterations=warmup, optimization_level=1, imposed_ks=sparsity if sparsity > 0 else None,
        )
        result = engine.analyze(inputs)
        ops = tuple(
            EngineOp(info["name"], float(info["average_run_time_in_ms"]),
                     tuple(o for o in info["canonical_name"].split(",") if o and o != "<none>"))
            for info in result["layer_info"]
        )
        return EngineRun(float(result["average_total_time"]), ops, float(engine.fraction_of_supported_ops))

    def time_calls(self, onnx_paths: list[str], inputs: list[np.ndarray], batch_size: int, num_cores: int,
                   rounds: int, block: int) -> list[list[float]]:
        """Compile every model, then run them in turn, ``block`` calls each per round; the first call of
        each block only warms the caches and is not counted. Machine noise hits all models alike while
        each timed call runs as in production, right after a call of the same model."""
        from deepsparse import Engine

        engines = [Engine(path, batch_size=batch_size, num_cores=num_cores) for path in onnx_paths]
        for engine in engines:
            engine.run(inputs)
        samples: list[list[float]] = [[] for _ in engines]
        for _ in range(rounds):
            for engine, times in zip(engines, samples):
                engine.run(inputs)
                for _ in range(max(block - 1, 1)):
                    start = time.perf_counter()
                    engine.run(inputs)
                    times.append((time.perf_counter() - start) * 1000.0)
        return samples
