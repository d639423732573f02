"""A small YOLO-format example data set made offline: coloured shapes with exact boxes on photo crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

from spdy_recipes.errors import SpdyError
from spdy_recipes.files import atomic_write_text

SHAPES = ("rectangle", "ellipse", "triangle")  # class i of the example data is SHAPES[i]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "grass", "gravel", "brick")


def make_detection_dataset(out_dir: str | Path, images: int = 64, size: int = 128, classes: int = 3,
                           seed: int = 0) -> Path:
    """Write ``images`` training and ``images // 4`` validation images of ``size`` px, each with one to three
    coloured shapes (class = shape) with exact boxes on a crop of a scikit-image photo; return data.yaml."""
    if not 1 <= classes <= len(SHAPES):
        raise SpdyError(f"the example data has 1 to {len(SHAPES)} classes ({', '.join(SHAPES)}), not {classes}")
    if images < 1 or size < 32:
        raise SpdyError(f"the example data needs at least 1 image of at least 32 px, not {images} of {size} px")
    import skimage.data

    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("RGB")) for name in PHOTOS]
    out = Path(out_dir)
    for split, count in (("train", images), ("val", max(images // 4, 1))):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, objects = _scene(rng, photos, size, classes)
            image.save(out / "images" / split / f"{index:05d}.png")
            lines = [f"{cls} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for cls, (x, y, w, h) in objects]
            atomic_write_text(out / "labels" / split / f"{index:05d}.txt", "".join(line + "\n" for line in lines))
    config = {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "nc": classes,
              "names": list(SHAPES[:classes])}
    return atomic_write_text(out / "data.yaml", yaml.safe_dump(config, sort_keys=False))


def _scene(rng: np.random.Generator, photos: list[np.ndarray], size: int, classes: int
           ) -> tuple[Image.Image, list[tuple[int, tuple[float, float, float, float]]]]:
    """One image and its objects as (class, normalised centre x, centre y, width, height)."""
    photo = photos[rng.integers(len(photos))]
    side = int(rng.integers(size // 2, min(photo.shape[:2]) + 1))
    top, left = (int(rng.integers(0, extent - side + 1)) for extent in photo.shape[:2])
    image = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)
    draw = ImageDraw.Draw(image)
    boxes: list[tuple[int, int, int, int]] = []
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        box = _free_box(rng, size, boxes)
        if box is None:
            continue
        cls = int(rng.integers(classes))
        _draw(draw, SHAPES[cls], box, tuple(int(c) for c in rng.integers(0, 256, 3)))
        boxes.append(box)
        x0, y0, x1, y1 = box
        objects.append((cls, ((x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size)))
    return image, objects


def _free_box(rng: np.random.Generator, size: int, taken: list[tuple[int, int, int, int]]
              ) -> tuple[int, int, int, int] | None:
    """A box (x0, y0, x1, y1), end-exclusive, that overlaps none of ``taken``; None after 20 tries."""
    for _ in range(20):
        w, h = (int(v) for v in rng.integers(size // 8, size // 2 + 1, 2))
        x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        box = (x0, y0, x0 + w, y0 + h)
        if all(box[2] <= o[0] or o[2] <= box[0] or box[3] <= o[1] or o[3] <= box[1] for o in taken):
            return box
    return None


def _draw(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], colour: tuple[int, ...]) -> None:
    """Fill ``shape`` so that it touches every side of ``box`` (PIL's coordinates are inclusive)."""
    x0, y0, x1, y1 = box[0], box[1], box[2] - 1, box[3] - 1
    if shape == "rectangle":
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    elif shape == "ellipse":
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    else:
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=colour)
