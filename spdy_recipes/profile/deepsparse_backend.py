"""The DeepSparse timing backend: per-op analysis with imposed kernel sparsity, and real engine calls, both
in the engine's child process (``engine_process``), so that a crash of its compiler is one error line."""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

import numpy as np

from .engine import EngineOp, EngineRun, TimedRounds, TimingRule
from .engine_process import run_isolated
from .hardware import CpuLoad, cpu_model_name
from .noise import paired_speedup

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
# one engine thread per core, pinned: on a 2-core Xeon (AVX-512 VNNI) MobileNetV2's dense-vs-0.9 speedup varied
# by 1.0% (relative standard deviation over 6 measurements in 2 processes) pinned against 1.3% unpinned, and
# its 95% intervals were a quarter narrower (README: How the numbers are made); NM_BIND_THREADS_TO_CORES=0
# turns it off
os.environ.setdefault("NM_BIND_THREADS_TO_CORES", "1")
MAX_BLOCK = 200  # calls per block at most, however fast the model


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
        return run_isolated(_analyze, onnx_path, inputs, batch_size, num_cores, sparsity, iterations, warmup,
                            what=f"analysing {Path(onnx_path).name}")

    def time_rounds(self, onnx_paths: list[str], inputs: list[np.ndarray], batch_size: int, num_cores: int,
                    rule: TimingRule) -> TimedRounds:
        """Compile every model, then run them in turn, one block of calls each per round; the first call of
        each block only warms the caches and is not counted. Machine noise hits all models alike while each
        timed call runs as in production, right after a call of the same model."""
        names = ", ".join(Path(p).name for p in onnx_paths[:3]) + (" ..." if len(onnx_paths) > 3 else "")
        return run_isolated(_time_rounds, onnx_paths, inputs, batch_size, num_cores, rule,
                            what=f"compiling or running {names}")


def _engine_arrays(inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The inputs with canonical dtypes: an unpickled array's dtype is an equal but new object, which the
    engine rejects ("input[0] has unsupported type 'float32'")."""
    return [np.ascontiguousarray(array.astype(np.dtype(array.dtype.name))) for array in inputs]


def _analyze(onnx_path: str, inputs: list[np.ndarray], batch_size: int, num_cores: int, sparsity: float,
             iterations: int, warmup: int) -> EngineRun:
    from deepsparse.engine import DebugAnalysisEngine

    inputs = _engine_arrays(inputs)
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


def _time_rounds(onnx_paths: list[str], inputs: list[np.ndarray], batch_size: int, num_cores: int,
                 rule: TimingRule) -> TimedRounds:
    from deepsparse import Engine

    inputs = _engine_arrays(inputs)
    engines = [Engine(path, batch_size=batch_size, num_cores=num_cores) for path in onnx_paths]
    for engine in engines:
        engine.run(inputs)
    block = rule.block or _block_size(engines[0], inputs, rule.block_ms)
    samples: list[list[list[float]]] = [[] for _ in engines]
    with CpuLoad() as load:
        started = time.monotonic()
        while True:
            for engine, rounds in zip(engines, samples, strict=True):
                engine.run(inputs)
                times = []
                for _ in range(block):
                    start = time.perf_counter()
                    engine.run(inputs)
                    times.append((time.perf_counter() - start) * 1000.0)
                rounds.append(times)
            done = len(samples[0])
            if done >= rule.max_rounds or (done >= rule.min_rounds and (
                    time.monotonic() - started >= rule.max_seconds or _precise(samples, rule.precision))):
                break
    return TimedRounds(samples, load.busy, block)


def _block_size(engine, inputs: list[np.ndarray], block_ms: float) -> int:
    """Calls per block so that a block lasts about ``block_ms``: a few-millisecond model needs many calls."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        engine.run(inputs)
        times.append((time.perf_counter() - start) * 1000.0)
    return max(1, min(MAX_BLOCK, math.ceil(block_ms / max(statistics.median(times), 1e-3))))


def _precise(samples: list[list[list[float]]], precision: float) -> bool:
    """Whether every model's paired speedup over the first has a 95% interval within ``precision``."""
    for rounds in samples[1:]:
        paired = paired_speedup(samples[0], rounds)
        if (paired.high - paired.low) / 2 > precision * paired.speedup:
            return False
    return True
