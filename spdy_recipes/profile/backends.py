"""The registry of measuring engines (their interface is ``engine``).

A backend measures two things: a per-operation breakdown of one whole-model run with a kernel sparsity
imposed on every prunable layer (``analyze``, used to build profiles), and wall-clock latency of real
engine calls on ONNX files (``time_rounds``, used by ``verify``, to calibrate a profile's table and its per-call
overhead).
Stored profiles need no backend at all (see ``sources``).
"""

from __future__ import annotations

from ..errors import SpdyError
from .engine import EngineOp, EngineRun, TimingBackend, engine_label

__all__ = ["EngineOp", "EngineRun", "TimingBackend", "backend_names", "engine_label", "get_backend"]


def backend_names() -> list[str]:
    return ["deepsparse"]


def get_backend(name: str = "deepsparse") -> TimingBackend:
    """The measuring backend called ``name``."""
    if name == "deepsparse":
        from .deepsparse_backend import DeepSparseBackend

        return DeepSparseBackend()
    raise SpdyError(f"unknown timing backend {name!r} (known: {', '.join(backend_names())})")
