"""What a training run leaves behind: checkpoints, the final weights, the final recipe and an ONNX export."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from spdy_recipes.deployment import FP32, Deployment
from spdy_recipes.files import atomic_torch_save, atomic_write_text
from spdy_recipes.models import ModelBundle
from spdy_recipes.models.export import export_onnx
from spdy_recipes.models.quantize import is_quantized


def save_checkpoint(path: str | Path, model: nn.Module, epoch: int, manager: object, loss: float) -> Path:
    """The weights after ``epoch`` with the recipe that made them (SparseML's serialised form)."""
    return atomic_torch_save({"state_dict": model.state_dict(), "epoch": epoch, "loss": loss,
                              "recipe": str(manager)}, path)


def save_final(out_dir: Path, model: nn.Module, manager: object) -> Path:
    """``model.pt`` (the state_dict, loadable by ``spdy-recipe verify --trained``) and ``final_recipe.yaml``."""
    atomic_write_text(out_dir / "final_recipe.yaml", str(manager))
    return atomic_torch_save(model.state_dict(), out_dir / "model.pt")


def export_model(model: nn.Module, inputs: dict[str, torch.Tensor], path: str | Path, name: str,
                 output_names: list[str] | None = None) -> Path:
    """Export ``model`` (eval mode) to ONNX for DeepSparse, atomically: in INT8 (integer operations) when the
    recipe's quantization-aware training ran on it (``models.quantize.is_quantized``), else in fp32."""
    target = Path(path)
    was_training = model.training
    model.eval()
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
            bundle = ModelBundle(spec=name, kind="trained", module=model, inputs=inputs,
                                 input_shape=tuple(next(iter(inputs.values())).shape[1:]),
                                 batch_size=int(next(iter(inputs.values())).shape[0]),
                                 output_names=output_names or ["output"])
            deployment = Deployment("int8") if is_quantized(model) else FP32
            written = export_onnx(bundle, Path(tmp) / target.name, deployment)
            os.replace(written, target)
    finally:
        model.train(was_training)
    return target
