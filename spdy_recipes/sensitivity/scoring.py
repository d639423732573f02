"""How good a pruned model is on calibration data: the task loss with labels (unless asked to distil), else
distillation to dense."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..calibration import CalibrationSet
from ..errors import SpdyError
from .outputs import model_output


@dataclass(frozen=True)
class Evaluation:
    """Mean loss over the set and, for classifiers, top-1 accuracy (or agreement with dense without labels)."""

    loss: float
    accuracy: float | None


class Scorer:
    """Scores the model's current weights on one data set.

    The loss (``kind``): with labels, cross-entropy; without labels, or with ``distill=True``, the KL
    divergence from the dense model's class distribution for classifier logits (batch x classes), else the
    relative squared error of the outputs against dense (sum |y - y_dense|² / sum |y_dense|², padding
    tokens left out). The accuracy (``accuracy_kind``) of a classifier: top-1 against the labels where
    there are labels, else top-1 agreement with dense; none for other outputs. Create it while the model
    is dense.
    """

    def __init__(self, model: nn.Module, data: CalibrationSet, batch_size: int, distill: bool = False) -> None:
        self.model, self.data, self.batch_size = model, data, batch_size
        with torch.no_grad():
            self.reference = [model_output(model, inputs).float() for inputs, _ in data.batches(batch_size)]
        classifier = all(out.ndim == 2 for out in self.reference)
        if data.labels is not None and classifier and not distill:
            self.kind = "cross-entropy"
        else:
            self.kind = "KL to dense" if classifier else "relative MSE to dense"
        labelled = data.labels is not None and classifier
        if labelled and data.labels is not None and int(data.labels.max()) >= self.reference[0].shape[-1]:
            raise SpdyError(f"{data.source}: label {int(data.labels.max())} is beyond the model's "
                            f"{self.reference[0].shape[-1]} classes (labels are class indices of this model)")
        self.accuracy_kind = ("top-1" if labelled else "top-1 agreement with dense") if classifier else None

    def evaluate(self, model: nn.Module | None = None) -> Evaluation:
        """The loss and accuracy of the model's current weights, or of ``model`` (another form of it, such as
        its fake-quantized INT8 copy), against the dense references taken at creation."""
        model = self.model if model is None else model
        losses, correct, count, squared, reference_squared = 0.0, 0, 0, 0.0, 0.0
        with torch.no_grad():
            for (inputs, labels), dense in zip(self.data.batches(self.batch_size), self.reference, strict=True):
                output = model_output(model, inputs).float()
                count += output.shape[0]
                if self.kind == "relative MSE to dense":
                    weight = _token_weights(inputs, output)
                    squared += float((((output - dense) ** 2) * weight).sum())
                    reference_squared += float(((dense ** 2) * weight).sum())
                    continue
                if self.kind == "cross-entropy":
                    assert labels is not None  # the kind of a labelled set
                    losses += float(F.cross_entropy(output, labels, reduction="sum"))
                else:
                    losses += float(F.kl_div(output.log_softmax(-1), dense.log_softmax(-1), log_target=True,
                                             reduction="sum"))
                truth = labels if self.accuracy_kind == "top-1" and labels is not None else dense.argmax(-1)
                correct += int((output.argmax(-1) == truth).sum())
        if self.kind == "relative MSE to dense":
            return Evaluation(squared / max(reference_squared, 1e-30), None)
        return Evaluation(losses / count, correct / count)

    def loss(self) -> float:
        return self.evaluate().loss


def _token_weights(inputs: dict[str, torch.Tensor], output: torch.Tensor) -> torch.Tensor | float:
    """1 for real tokens and 0 for padding when the output is per token (batch x sequence x ...), else 1."""
    mask = inputs.get("attention_mask")
    if mask is None or output.ndim < 3 or tuple(output.shape[:2]) != tuple(mask.shape):
        return 1.0
    return mask.to(output.dtype).reshape(*mask.shape, *([1] * (output.ndim - 2)))
