"""Offline example images for classification: class k draws shape k in a random colour, place and size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from spdy_recipes.errors import SpdyError

_SHAPES = ("rectangle", "ellipse", "triangle", "cross", "ring")


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
