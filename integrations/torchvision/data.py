"""Image classification data: an ImageFolder, a saved tensor dataset, or offline example images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset, TensorDataset

from spdy_recipes.errors import SpdyError

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_SHAPES = ("rectangle", "ellipse", "triangle", "cross", "ring")


def load_dataset(path: str | Path, img_size: int, train: bool) -> tuple[Dataset, int]:
    """(dataset, number of classes) from an ImageFolder directory or a ``.pt`` file holding
    ``{"images": N x C x H x W float, "labels": N int}``."""
    path = Path(path)
    if path.is_dir():
        return _image_folder(path, img_size, train)
    if path.suffix == ".pt" and path.is_file():
        return _tensor_dataset(path)
    raise SpdyError(f"dataset {path} is neither an image folder (one sub-folder per class) nor a .pt tensor file")


def _image_folder(path: Path, img_size: int, train: bool) -> tuple[Dataset, int]:
    from torchvision import datasets, transforms

    steps = [transforms.Resize(img_size), transforms.CenterCrop(img_size)]
    if train:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    try:
        folder = datasets.ImageFolder(str(path), transform=transforms.Compose(steps))
    except (FileNotFoundError, RuntimeError) as exc:
        raise SpdyError(f"image folder {path}: {exc}") from None
    return folder, len(folder.classes)


def _tensor_dataset(path: Path) -> tuple[Dataset, int]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        images, labels = torch.as_tensor(data["images"]).float(), torch.as_tensor(data["labels"]).long()
    except Exception as exc:  # torch raises many types for a bad file
        raise SpdyError(f"tensor dataset {path}: expected {{'images': N x C x H x W, 'labels': N}} ({exc})") from None
    if images.dim() != 4 or len(images) != len(labels) or len(labels) == 0:
        raise SpdyError(f"tensor dataset {path}: images {tuple(images.shape)} and labels {tuple(labels.shape)} "
                        f"do not pair up as N x C x H x W and N")
    return TensorDataset(images, labels), int(labels.max()) + 1


def make_image_folder(out_dir: str | Path, classes: int = 5, per_class: int = 16, size: int = 64,
                      seed: int = 0) -> Path:
    """Write a learnable ImageFolder: class k draws shape k (of five) in a random colour, place and size."""
    if not 1 <= classes <= len(_SHAPES):
        raise SpdyError(f"example images have 1 to {len(_SHAPES)} classes, got {classes}")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = out_dir / f"{label}-{_SHAPES[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            _draw(_SHAPES[label], size, rng).save(folder / f"{index:04d}.png")
    return out_dir


def _draw(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    noise = rng.integers(0, 96, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    draw = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(128, 256, 3))
    half = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(half, size - half, 2))
    box = (cx - half, cy - half, cx + half, cy + half)
    if shape == "rectangle":
        draw.rectangle(box, fill=colour)
    elif shape == "ellipse":
        draw.ellipse(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=colour)
    elif shape == "cross":
        width = max(1, half // 3)
        draw.rectangle((cx - half, cy - width, cx + half, cy + width), fill=colour)
        draw.rectangle((cx - width, cy - half, cx + width, cy + half), fill=colour)
    else:
        draw.ellipse(box, outline=colour, width=max(1, half // 3))
    return image
