"""Call a model on one batch of inputs the way its forward expects them."""

from __future__ import annotations

import torch
from torch import nn


def takes_keywords(model: nn.Module) -> bool:
    """Transformers models (``main_input_name``) take their tensors by keyword: GPT-2's second positional
    parameter is ``past_key_values``, not the attention mask. Other models take them by position."""
    return isinstance(getattr(model, "main_input_name", None), str)


def run_model(model: nn.Module, inputs: dict[str, torch.Tensor]):
    """``model(**inputs)`` for transformers models, else ``model(*inputs.values())``."""
    if takes_keywords(model):
        return model(**inputs)
    return model(*inputs.values())
