"""Running a model on a batch of named inputs and taking its main output."""

from __future__ import annotations

import torch
from torch import nn


def model_output(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's first output (logits, hidden states or detections) for one batch."""
    output = model(*inputs.values())
    while isinstance(output, (tuple, list)):
        output = output[0]
    return output
