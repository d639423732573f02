"""Read a ``--weights`` file in the forms real checkpoints come in, and load it into a model."""

from __future__ import annotations

import argparse
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard

import torch
from torch import nn

from ..errors import SpdyError

WEIGHT_FILES = ("model.pt", "model.safetensors", "pytorch_model.bin", "checkpoint.pth")  # last: SparseML's trainer
# the entries training scripts keep the weights under, tried in this order
WRAPPER_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "module", "net", "network")
# key prefixes that wrappers add: DataParallel/DistributedDataParallel, torch.compile
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# plain-data classes that checkpoints keep beside the weights (SparseML's image classification trainer saves its
# command-line arguments as a SimpleNamespace): allowed when reading, nothing else is unpickled
SAFE_GLOBALS: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [types.SimpleNamespace, argparse.Namespace]


def read_state_dict(weights: str | Path, notes: list[str] | None = None) -> dict[str, torch.Tensor]:
    """A plain state_dict (parameter name -> tensor) from a ``--weights`` file.

    Reads a torch file (``torch.load``, tensors only), a ``.safetensors`` file, or a folder holding
    model.pt, model.safetensors, pytorch_model.bin or checkpoint.pth, and undoes the forms training scripts save in:
    a checkpoint dict that keeps the weights under one of ``WRAPPER_KEYS`` (or under its only entry
    that is a dict of tensors), ``module.`` / ``_orig_mod.`` key prefixes (DataParallel, DDP,
    torch.compile), and ``weight_orig`` + ``weight_mask`` pairs left by ``torch.nn.utils.prune``
    (multiplied back into ``weight``). Each form undone is appended to ``notes`` as one sentence.

    Raises SpdyError: no such file, an unreadable file, or no dict of tensors inside.
    """
    notes = [] if notes is None else notes
    path = Path(weights)
    if path.is_dir():
        found = next((path / name for name in WEIGHT_FILES if (path / name).is_file()), None)
        if found is None:
            raise SpdyError(f"weights folder {str(weights)!r} holds none of {', '.join(WEIGHT_FILES)}")
        path = found
    if not path.is_file():
        raise SpdyError(f"weights {str(weights)!r}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            with torch.serialization.safe_globals(SAFE_GLOBALS):
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for a corrupt file
        raise SpdyError(f"cannot read weights {str(path)!r}: {_load_failure(exc)}") from None
    state = _unwrap(state, str(path), notes)
    state = _strip_prefixes(state, notes)
    return _fold_prune_masks(state, notes)


def _load_failure(exc: Exception) -> str:
    """What a failed torch.load / safetensors load means, in one line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if "Weights only load failed" in text and "Unsupported global" in text:
        return ("it holds pickled Python objects, not only tensors (a whole model saved with torch.save(model)?); "
                "save model.state_dict() instead")
    first = (text.strip().splitlines() or [""])[0]
    return f"not a torch or safetensors weights file ({type(exc).__name__}{': ' + first if first else ''})"


def _is_state_dict(value: object) -> TypeGuard[dict[Any, torch.Tensor]]:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def _unwrap(state: object, path: str, notes: list[str]) -> dict:
    if _is_state_dict(state):
        return state
    if isinstance(state, dict):
        for key in WRAPPER_KEYS:
            if _is_state_dict(state.get(key)):
                notes.append(f"read the weights from the checkpoint's {key!r} entry")
                return state[key]
        inner = [key for key, value in state.items() if _is_state_dict(value)]
        if len(inner) == 1:
            notes.append(f"read the weights from the checkpoint's {inner[0]!r} entry (its only dict of tensors)")
            return state[inner[0]]
        keys = ", ".join(repr(k) for k in list(state)[:8])
        found = f" (dicts of tensors under {', '.join(map(repr, inner))}: which one is the model?)" if inner else ""
        raise SpdyError(f"weights {path!r} hold a dict with keys {keys}, not a state_dict{found}")
    raise SpdyError(f"weights {path!r} hold a {type(state).__name__}, not a state_dict")


def _strip_prefixes(state: dict, notes: list[str]) -> dict:
    for prefix in WRAPPER_PREFIXES:
        if all(key.startswith(prefix) for key in state):
            notes.append(f"stripped the {prefix!r} prefix from every key")
            state = {key[len(prefix):]: value for key, value in state.items()}
    return state


def _fold_prune_masks(state: dict, notes: list[str]) -> dict:
    pairs = [key[: -len("_orig")] for key in state if key.endswith("_orig") and key[:-5] + "_mask" in state]
    if not pairs:
        return state
    state = dict(state)
    for name in pairs:
        state[name] = state.pop(name + "_orig") * state.pop(name + "_mask")
    notes.append(f"multiplied {len(pairs)} torch.nn.utils.prune weight_orig/weight_mask pair(s) into the weight "
                 f"({', '.join(pairs[:3])}{', ...' if len(pairs) > 3 else ''})")
    return state


def load_weights(module: nn.Module, weights: str | Path, warn=None) -> list[str]:
    """Load ``read_state_dict(weights)`` into ``module`` strictly; return the notes on forms undone (each
    also passed to ``warn`` if given).

    Raises SpdyError: the file cannot be read, or its keys or shapes do not fit the model (the message
    names the first missing and unexpected keys, or the first shape mismatch).
    """
    notes: list[str] = []
    state = read_state_dict(weights, notes)
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = [f"{len(keys)} {what} key(s): {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}"
                 for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise SpdyError(f"weights {str(weights)!r} do not fit the model ({type(module).__name__}): {'; '.join(parts)}")
    wrong = [f"{key} {list(state[key].shape)} (the model has {list(tensor.shape)})"
             for key, tensor in expected.items() if state[key].shape != tensor.shape]
    if wrong:
        raise SpdyError(f"weights {str(weights)!r} do not fit the model ({type(module).__name__}): "
                        f"{len(wrong)} shape mismatch(es), first {wrong[0]}")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SpdyError(f"weights {str(weights)!r} do not fit the model: {_first_line(exc)}") from None
    for note in notes:
        if warn is not None:
            warn(f"weights {Path(weights).name}: {note}")
    return notes


def _first_line(exc: Exception) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return text[:300] or type(exc).__name__
