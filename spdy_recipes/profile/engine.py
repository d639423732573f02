"""What a measuring engine gives and implements: one analysed run's per-operation breakdown, and the
``TimingBackend`` interface (the registry of engines is ``backends``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


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
    supported_fraction: float | None = None  # of the graph's operations, run in the engine's optimised kernels


class TimingBackend(Protocol):
    """An inference engine that can time a model on this machine."""

    name: str

    def version(self) -> str:
        """The engine's version string, recorded in profiles."""

    def describe_host(self) -> dict:
        """CPU model, vendor, ISA and core counts as the engine sees them."""

    def max_cores(self) -> int:
        """The most cores the engine can use here."""

    def analyze(self, onnx_path: str, inputs: list[np.ndarray], batch_size: int, num_cores: int,
                sparsity: float, iterations: int, warmup: int) -> EngineRun:
        """Per-operation times of the model with ``sparsity`` imposed on all prunable kernels (0: as is)."""

    def time_calls(self, onnx_paths: list[str], inputs: list[np.ndarray], batch_size: int, num_cores: int,
                   rounds: int, block: int) -> list[list[float]]:
        """Milliseconds per call of each model, alternating models in blocks of ``block`` calls."""


def engine_label(backend: TimingBackend) -> str:
    """``<name> <version>``, as profiles, descriptions and recipes record the engine."""
    return f"{backend.name} {backend.version()}"
