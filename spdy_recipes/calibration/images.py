"""Images into model inputs: the split between calibration and held-out images, centre and seeded random
resized crops, and the model's normalisation."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import SpdyError
from ..models import ModelBundle
from .sets import CalibrationSet, Request, shape_text

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
CROP_AREA = (0.25, 1.0)  # fractions of the image's area
CROP_ASPECT = (3 / 4, 4 / 3)

ImageLoader = Callable[[], Image.Image]


def from_image_folder(path: Path, request: Request) -> tuple[CalibrationSet, CalibrationSet]:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return from_images([partial(open_image, f) for f in files], _class_folder_labels(path, files), str(path), request)


def _class_folder_labels(root: Path, files: list[Path]) -> list[int] | None:
    """Each image's class index when every image sits in a sub-folder named by an integer, else None."""
    if files and all(f.parent != root and f.parent.name.isdigit() for f in files):
        return [int(f.parent.name) for f in files]
    return None


def open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise SpdyError(f"cannot read image {path}: {exc}") from None


def from_images(
    loaders: Sequence[ImageLoader], labels: list[int] | None, where: str, request: Request
) -> tuple[CalibrationSet, CalibrationSet]:
    """Split the images between calibration and held-out, then render each split's samples from its images."""
    name, size = _image_input(request.bundle)
    if not loaders:
        raise SpdyError(f"no images in {where} (looked for {' '.join(IMAGE_SUFFIXES)})")
    order = request.rng.permutation(len(loaders))
    held = _held_out_image_count(len(loaders), request, where)
    dtype = request.bundle.inputs[name].dtype
    normalise = _normalisation(request.bundle)
    splits = []
    for images, count in ((order[held:held + request.samples], request.samples), (order[:held], request.holdout)):
        pixels = _render([loaders[i] for i in images], count, size, normalise, request.rng).to(dtype)
        split_labels = None if labels is None else torch.tensor(
            [labels[images[i % len(images)]] for i in range(count)], dtype=torch.int64
        )
        splits.append(CalibrationSet({name: pixels}, split_labels, _describe_images(count, len(images), where)))
    return splits[0], splits[1]


def _image_input(bundle: ModelBundle) -> tuple[str, tuple[int, int]]:
    """The image input's name and (H, W); a model that takes no (3, H, W) image is a SpdyError."""
    if bundle.kind == "hf" and "pixel_values" not in bundle.inputs:
        raise SpdyError(
            f"images cannot calibrate the hf model {bundle.spec}: it takes token ids "
            "(give a .txt file, a text dataset or builtin:text)"
        )
    shape = bundle.input_shape
    if len(bundle.inputs) != 1 or len(shape) != 3 or shape[0] != 3:
        raise SpdyError(f"images need a model with one 3,H,W input; {bundle.spec} takes {shape_text(shape)}")
    return next(iter(bundle.inputs)), (shape[1], shape[2])


def _normalisation(bundle: ModelBundle) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(mean, std), each shaped (3, 1, 1), that the model's images are normalised with; None for yolov5."""
    if bundle.kind == "yolov5":
        return None
    config = getattr(bundle.module, "pretrained_cfg", None) or getattr(bundle.module, "default_cfg", None)
    if isinstance(config, dict) and "mean" in config and "std" in config:
        try:
            mean, std = (torch.tensor([float(v) for v in config[k]]).view(3, 1, 1) for k in ("mean", "std"))
        except (TypeError, ValueError, RuntimeError):
            raise SpdyError(f"{bundle.spec}: pretrained_cfg mean/std must be 3 numbers each, got "
                            f"{config['mean']!r} / {config['std']!r}") from None
        if (std <= 0).any():
            raise SpdyError(f"{bundle.spec}: pretrained_cfg std must be positive, got {config['std']!r}")
        return mean, std
    return IMAGENET_MEAN, IMAGENET_STD


def _held_out_image_count(count: int, request: Request, where: str) -> int:
    """How many of ``count`` images go to the held-out split: ``holdout`` when there are enough, else a share."""
    if count >= request.total or request.holdout == 0:
        return min(request.holdout, count)
    if count < 2:
        raise SpdyError(
            f"{where} has only 1 image: too few to give the calibration and held-out splits one each "
            "(add images, or ask for no held-out samples)"
        )
    return min(count - 1, max(1, round(count * request.holdout / request.total)))


def _render(
    loaders: list[ImageLoader], count: int, size: tuple[int, int],
    normalise: tuple[torch.Tensor, torch.Tensor] | None, rng: np.random.Generator
) -> torch.Tensor:
    """``count`` samples drawn in turn from the images: each one's centre crop, then random resized crops."""
    out = torch.empty((count, 3, *size))
    for slot, loader in enumerate(loaders):
        image = loader()
        for position in range(slot, count, len(loaders)):
            box = _centre_box(image.size, size) if position == slot else _random_box(image.size, size, rng)
            out[position] = _to_tensor(image.resize((size[1], size[0]), Image.Resampling.BILINEAR, box=box), normalise)
    return out


def _centre_box(image_size: tuple[int, int], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The largest centred box with the aspect of ``size`` (H, W): a resize of the shorter side and a centre crop."""
    width, height = image_size
    aspect = size[1] / size[0]
    crop_width, crop_height = min(width, height * aspect), min(height, width / aspect)
    left, top = (width - crop_width) / 2, (height - crop_height) / 2
    return left, top, left + crop_width, top + crop_height


def _random_box(
    image_size: tuple[int, int], size: tuple[int, int], rng: np.random.Generator
) -> tuple[float, float, float, float]:
    """A box of random area (CROP_AREA of the image) and aspect (CROP_ASPECT) at a random place."""
    width, height = image_size
    for _ in range(10):
        area = width * height * rng.uniform(*CROP_AREA)
        aspect = math.exp(rng.uniform(math.log(CROP_ASPECT[0]), math.log(CROP_ASPECT[1])))
        crop_width, crop_height = math.sqrt(area * aspect), math.sqrt(area / aspect)
        if crop_width <= width and crop_height <= height:
            left, top = rng.uniform(0, width - crop_width), rng.uniform(0, height - crop_height)
            return left, top, left + crop_width, top + crop_height
    return _centre_box(image_size, size)


def _to_tensor(image: Image.Image, normalise: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    return pixels if normalise is None else (pixels - normalise[0]) / normalise[1]


def _describe_images(count: int, images: int, where: str) -> str:
    if count <= images:
        return f"{count} images from {where}, centre-cropped"
    low, high = (round(100 * a) for a in CROP_AREA)
    return (f"{count} crops of {images} images from {where} "
            f"(a centre crop each, then random resized crops of {low}-{high}% of the area)")
