"""Running a model on a batch of named inputs and taking its main output."""

from __future__ import annotations

import torch
from torch import nn

from ..models.call import run_model


def model_output(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's first output (logits, hidden states, detections or a segmentation's ``out``) for one batch."""
    output = run_model(model, inputs)
    while isinstance(output, (tuple, list, dict)):
        output = output["out"] if isinstance(output, dict) and "out" in output else next(iter(
            output.values() if isinstance(output, dict) else output))
    return output
