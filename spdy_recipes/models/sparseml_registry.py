"""SparseML's own model builders, as SparseML's training commands use them.

``sparseml.image_classification.train --arch-key KEY`` builds ``ModelRegistry.create(KEY, num_classes=...)``
when KEY is a registry key, and ``torchvision.models.KEY(num_classes=...)`` only for keys the registry lacks
(``sparseml.pytorch.torchvision.train._create_model``, SparseML 1.8). The registry's ResNet, VGG, MobileNet,
EfficientNet and Inception have other parameter names than torchvision's (``input.conv.weight``, not
``conv1.weight``), so a recipe must be generated for the model the command will build.
``sparseml.transformers.text_classification`` and ``question_answering`` build the task model
(``AutoModelFor...``), whose encoder layers sit under the base model's prefix (``bert.encoder...``).
"""

from __future__ import annotations

import difflib

from torch import nn

from ..errors import SpdyError

IMAGE_TRAINER = "sparseml.image_classification.train"
TEXT_TRAINERS = ("sparseml.transformers.text_classification", "sparseml.transformers.question_answering")


def _registry():
    from sparseml.pytorch.models import ModelRegistry

    return ModelRegistry


def registry_keys() -> list[str]:
    """Every key of SparseML's ModelRegistry (several spellings per model, e.g. resnet18, resnet_18)."""
    return list(_registry().available_keys())


def build_registry_model(key: str, num_classes: int | None) -> tuple[nn.Module, tuple[int, ...]]:
    """(module, input shape without batch) of SparseML's registry model ``key``, built as SparseML's image
    classification trainer builds it: random init (``pretrained=False``, nothing downloaded) and ``num_classes``
    outputs (None: the architecture's default, 1000). Raises SpdyError for an unknown key or a detection model."""
    registry = _registry()
    keys = registry.available_keys()
    if key not in keys:
        close = difflib.get_close_matches(key, keys, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SpdyError(f"unknown SparseML registry model {key!r}{hint}")
    attributes = registry._ATTRIBUTES.get(key)  # the registry exposes input_shape only; domain lives here
    if attributes is not None and attributes.sub_domain != "classification":
        raise SpdyError(f"sparseml:{key} is a {attributes.sub_domain} model: its forward returns boxes and "
                        f"scores that the engine cannot profile as one graph; prune a classification backbone")
    options = {} if num_classes is None else {"num_classes": num_classes}
    try:
        module = registry.create(key=key, pretrained=False, **options)
    except TypeError as exc:
        raise SpdyError(f"sparseml:{key} cannot be built with these options ({exc})") from None
    return module, tuple(int(dim) for dim in registry.input_shape(key))


def trainer_note(spec: str, module: nn.Module) -> str | None:
    """Why a recipe for ``spec`` will not match the model SparseML's own training command builds, and the spec
    to generate for instead; None when it matches (or no SparseML command trains this kind of model)."""
    kind, _, target = spec.partition(":")
    if kind == "torchvision" and target in registry_keys():
        return (f"{IMAGE_TRAINER} --arch-key {target} builds SparseML's registry model, whose layers have other "
                f"names than torchvision's: this recipe fits that command with --arch-key torchvision.{target}, "
                f"or generate with --model sparseml:{target} for --arch-key {target}")
    name = type(module).__name__
    if kind == "hf" and getattr(module, "base_model", None) is module and name.endswith("Model"):
        family, prefix = name.removesuffix("Model"), module.base_model_prefix
        return (f"this recipe names {name}'s layers, but {' and '.join(TEXT_TRAINERS)} build the task "
                f"model, whose layers sit under '{prefix}.': for them generate with --model "
                f"{spec}:{family}ForSequenceClassification (or {family}ForQuestionAnswering)")
    return None
