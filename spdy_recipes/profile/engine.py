"""What a measuring engine gives and implements: one analysed run's per-operation breakdown, and the
``TimingBackend`` interface (the registry of engines is ``backends``)."""

from __future__ import annotations

import statistics
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


@dataclass(kw_only=True, frozen=True)
class TimingRule:
    """How long real engine calls are timed: models alternate in rounds, each model timing one block of calls
    per round (one untimed call first). A block lasts about ``block_ms`` (ms; at least one call), unless
    ``block`` fixes its calls. Rounds go on from ``min_rounds`` until every model's paired speedup over the
    first model has a 95% interval of half-width at most ``precision`` (a fraction of the speedup), or until
    ``max_rounds`` or ``max_seconds`` (s)."""

    min_rounds: int = 6
    max_rounds: int = 40
    precision: float = 0.02
    max_seconds: float = 60.0
    block_ms: float = 60.0
    block: int | None = None


@dataclass(frozen=True)
class TimedRounds:
    """Real call times: ``samples[m][r]`` lists model m's timed calls (ms) in round r; ``busy`` is the share of
    the machine's CPU that other processes used meanwhile (None where unknown); ``block`` the calls timed per
    model and round."""

    samples: list[list[list[float]]]
    busy: float | None
    block: int

    @property
    def rounds(self) -> int:
        return len(self.samples[0])

    def median_ms(self, model: int) -> float:
        """Model ``model``'s median call time (ms) over every round."""
        return statistics.median(call for round_ in self.samples[model] for call in round_)


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

    def time_rounds(self, onnx_paths: list[str], inputs: list[np.ndarray], batch_size: int, num_cores: int,
                    rule: TimingRule) -> TimedRounds:
        """Real engine calls of every model, alternating models round by round as ``rule`` says."""


def engine_label(backend: TimingBackend) -> str:
    """``<name> <version>``, as profiles, descriptions and recipes record the engine."""
    return f"{backend.name} {backend.version()}"
