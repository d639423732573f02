"""Where the torch work runs (``--device``): the layer inputs and Hessians, the database's reconstruction, the
search's scoring, the global re-fit and the one-shot evaluation. Exports and engine timing stay on the CPU.

``auto`` is the first GPU when torch sees one, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` name one.
"""

from __future__ import annotations

import re

import torch

from .errors import SpdyError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(text: str = "auto") -> torch.device:
    """The torch device ``text`` names (see the module docstring). Raises SpdyError for another name, and for
    a GPU torch does not see (no CUDA build or driver, or an index beyond the GPUs it counts)."""
    value = text.strip().lower()
    if value == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if value == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", value)
    if match is None:
        raise SpdyError(f"bad --device {text!r}: expected {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        raise SpdyError(f"--device {text}: torch sees no GPU here (torch.cuda.is_available() is False); "
                        f"use --device cpu or auto")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise SpdyError(f"--device {text}: torch sees {torch.cuda.device_count()} GPU(s), numbered from 0")
    return torch.device("cuda", index)


def on_cpu(device: torch.device) -> bool:
    """Whether ``device`` is the CPU (the models as loaded: nothing to move)."""
    return device.type == "cpu"
