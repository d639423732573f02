"""Call a model on one batch of inputs the way its forward expects them."""

from __future__ import annotations

import torch
from torch import nn

IMAGE_INPUT = "input"  # the one positional tensor of image models (torchvision, yolov5, python:)


def run_model(model: nn.Module, inputs: dict[str, torch.Tensor]):
    """``model(inputs["input"])`` for image models, else ``model(**inputs)``: transformers models take their
    tensors by keyword (GPT-2's second positional parameter is ``past_key_values``, not the attention mask)."""
    if list(inputs) == [IMAGE_INPUT]:
        return model(inputs[IMAGE_INPUT])
    return model(**inputs)
