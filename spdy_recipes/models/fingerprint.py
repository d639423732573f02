"""A structural hash of a model: architecture and input shape, not weight values."""

from __future__ import annotations

import hashlib
import json

from .spec import ModelBundle


def graph_hash(bundle: ModelBundle, input_shapes: dict[str, list[int]] | None = None) -> str:
    """Hash module types, their configuration, parameter shapes and the per-sample input shape (the
    bundle's, or ``input_shapes``: input name -> shape without the batch)."""
    modules = [
        [name, type(module).__qualname__, module.extra_repr()] for name, module in bundle.module.named_modules()
    ]
    tensors = [[name, list(t.shape)] for name, t in bundle.module.state_dict().items()]
    inputs = input_shapes or {name: list(t.shape[1:]) for name, t in bundle.inputs.items()}
    payload = json.dumps({"modules": modules, "tensors": tensors, "inputs": inputs}, sort_keys=True)
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:32]
