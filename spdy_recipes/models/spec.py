"""Turn a ``--model`` spec (torchvision:, sparseml:, hf:, yolov5:, python:) into a module and example inputs."""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SpdyError, first_line, warn
from .hf import DEFAULT_SEQUENCE, build_huggingface
from .weights import load_weights

KINDS = ("torchvision", "sparseml", "hf", "yolov5", "python")
DEFAULT_SHAPES = {"torchvision": (3, 224, 224), "hf": DEFAULT_SEQUENCE, "yolov5": (3, 640, 640)}
CLASS_COUNT_KINDS = ("torchvision", "sparseml")  # kinds whose builder takes --num-classes


@dataclass(kw_only=True)
class ModelBundle:
    """A model ready for export: the module (eval mode), its inputs for one batch, and how it was made."""

    spec: str
    kind: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
    input_shape: tuple[int, ...]
    batch_size: int
    output_names: list[str] = field(default_factory=lambda: ["output"])
    num_classes: int | None = None

    @property
    def slug(self) -> str:
        """A file-name-safe form of the spec."""
        text = self.spec.split(":", 1)[-1] if self.kind != "hf" else Path(self.spec[3:]).name
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in f"{self.kind}-{text}")
        return safe.strip("-.") or self.kind


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """Parse ``3,224,224`` (or ``3x224x224``) into a tuple of positive ints, without the batch."""
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise SpdyError(f"bad --input-shape {text!r}: expected integers like 3,224,224") from None
    if not shape or any(dim <= 0 for dim in shape):
        raise SpdyError(f"bad --input-shape {text!r}: expected positive integers like 3,224,224")
    return shape


def load_model(
    spec: str,
    batch_size: int = 16,
    input_shape: tuple[int, ...] | None = None,
    weights: str | None = None,
    num_classes: int | None = None,
) -> ModelBundle:
    """Build the model that ``spec`` names (``num_classes`` outputs for torchvision: and sparseml: models; None:
    the architecture's default), load ``weights`` if given, and make one batch of inputs. Raises SpdyError on
    a bad spec or option."""
    if batch_size < 1:
        raise SpdyError(f"--batch-size must be at least 1, got {batch_size}")
    kind, _, target = spec.partition(":")
    if kind not in KINDS or not target:
        raise SpdyError(f"unknown model spec {spec!r}: expected one of {', '.join(k + ':...' for k in KINDS)}")
    if num_classes is not None and (kind not in CLASS_COUNT_KINDS or num_classes < 1):
        raise SpdyError(f"--num-classes {num_classes}: expected a positive count for torchvision: or sparseml: "
                        f"models (hf: set num_labels in config.json; yolov5: nc in the config)")
    # each returns (module, input shape, inputs_for); torchvision: and sparseml: ones also take num_classes
    builders: dict[str, Callable[..., Any]] = {"torchvision": _torchvision, "sparseml": _sparseml,
                                               "hf": build_huggingface, "yolov5": _yolov5,
                "python": _python}
    torch.manual_seed(0)  # models without --weights get the same initial weights in every run
    build = builders[kind]
    module, shape, inputs_for = build(target, input_shape, num_classes) if kind in CLASS_COUNT_KINDS \
        else build(target, input_shape)
    if weights:
        load_weights(module, weights, warn=warn)
    else:
        unit_scale_norms(module)
    module.eval()
    torch.manual_seed(0)
    inputs = inputs_for(batch_size)
    output_names = ["logits"] if kind == "hf" else ["output"]
    return ModelBundle(spec=spec, kind=kind, module=module, inputs=inputs, input_shape=shape, batch_size=batch_size,
                       output_names=output_names, num_classes=num_classes)


NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def unit_scale_norms(module: nn.Module) -> list[str]:
    """Set to 1 the scale of every normalization layer initialised to all zeros, in place; returns their names.

    Zero-init residual ("the last BN of each residual branch starts at 0": SparseML's ResNets, timm's, torchvision's
    with ``zero_init_residual=True``) makes the engine fold the convolution before it into all-zero weights, so
    a fresh model times that convolution as 100% sparse at every level and the dense baseline as faster than any
    trained model (measured: SparseML's ResNet18 recipe verified at 2.7x one-shot ran at 0.86x once trained).
    Only the values change, never the graph."""
    names = []
    with torch.no_grad():
        for name, layer in module.named_modules():
            scale = getattr(layer, "weight", None)
            if isinstance(layer, NORMS) and isinstance(scale, torch.Tensor) and not scale.any():
                scale.fill_(1.0)
                names.append(name)
    return names


def _image_inputs(shape: tuple[int, ...]):
    def make(batch: int) -> dict[str, torch.Tensor]:
        return {"input": torch.randn(batch, *shape)}

    return make


def _torchvision(name: str, shape: tuple[int, ...] | None, num_classes: int | None):
    import torchvision

    available = torchvision.models.list_models()
    if name not in available:
        close = difflib.get_close_matches(name, available, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SpdyError(f"unknown torchvision model {name!r}{hint}")
    for family, reason in UNSUPPORTED_TORCHVISION.items():
        if name in torchvision.models.list_models(module=getattr(torchvision.models, family)):
            raise SpdyError(f"torchvision:{name} is not supported: {reason}")
    builder = torchvision.models.get_model_builder(name)
    options = {"weights": None} if num_classes is None else {"weights": None, "num_classes": num_classes}
    if "weights_backbone" in inspect.signature(builder).parameters:
        options["weights_backbone"] = None  # else segmentation builders download ImageNet backbone weights
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # GoogLeNet/Inception: "default weight initialization"
            module = builder(**options)
    except OSError as exc:  # urllib's URLError, a refused connection: a builder that still wants the network
        raise SpdyError(f"building torchvision:{name} tried to download weights ({first_line(exc)}); "
                        "nothing is downloaded at run time: give --weights, or build it in a python: spec") from None
    shape = shape or DEFAULT_SHAPES["torchvision"]
    return module, shape, _image_inputs(shape)


def _sparseml(key: str, shape: tuple[int, ...] | None, num_classes: int | None):
    from .sparseml_registry import build_registry_model

    module, default_shape = build_registry_model(key, num_classes)
    shape = shape or default_shape
    return module, shape, _image_inputs(shape)


# torchvision model families whose eval forward is not one image batch in, one tensor out
UNSUPPORTED_TORCHVISION = {
    "detection": "detection models take a list of images and return boxes after non-maximum suppression, "
                 "which the engine cannot profile as one graph; prune the backbone (e.g. torchvision:resnet50)",
    "optical_flow": "optical flow models take two images and iterate a refinement loop; prune a "
                    "classification backbone instead",
}


def _yolov5(cfg: str, shape: tuple[int, ...] | None):
    import yolov5
    from yolov5.models.yolo import Model

    path = Path(cfg)
    if not path.is_file():
        path = Path(yolov5.__file__).parent / "models" / cfg
    if not path.is_file():
        shipped = sorted(p.name for p in (Path(yolov5.__file__).parent / "models").glob("yolov5*.yaml"))
        raise SpdyError(f"unknown yolov5 config {cfg!r}: not a file, and the yolov5 package ships {', '.join(shipped)}")
    logger = logging.getLogger("yolov5")  # yolov5 logs a layer summary at INFO
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module = Model(str(path))
    finally:
        logger.setLevel(level)
    module.model[-1].export = True  # Detect returns one tensor, which ONNX export needs
    shape = shape or DEFAULT_SHAPES["yolov5"]
    return module, shape, _image_inputs(shape)


def _python(target: str, shape: tuple[int, ...] | None):
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise SpdyError(f"bad python model spec {target!r}: expected python:MODULE:CALLABLE")
    if os.getcwd() not in sys.path:  # like `python -m`, resolve modules from the working directory
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise SpdyError(f"cannot import python model {target!r}: {exc}") from None
    try:
        module = factory()
    except Exception as exc:  # the user's own code: any exception, named in one line
        raise SpdyError(f"python model {target!r} failed to build: {type(exc).__name__}: {first_line(exc)}") from None
    if not isinstance(module, nn.Module):
        raise SpdyError(f"python model {target!r} returned {type(module).__name__}, not a torch.nn.Module")
    if shape is None:
        raise SpdyError("python: models need --input-shape (without the batch), e.g. --input-shape 3,32,32")
    return module, shape, _image_inputs(shape)
