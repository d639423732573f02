"""YOLO-format detection data: yolov5-style ``data.yaml`` files, their images and labels, letterboxed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from spdy_recipes.errors import SpdyError
from spdy_recipes.files import read_yaml

IMAGE_SUFFIXES = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}
PAD = 114  # yolov5's letterbox grey


@dataclass(frozen=True)
class DetectionData:
    """What training needs from a data.yaml: the training images and the classes."""

    train: list[Path]
    names: list[str]

    @property
    def nc(self) -> int:
        return len(self.names)


def read_data_yaml(path: str | Path) -> DetectionData:
    """Read a yolov5 data.yaml: ``train`` (a folder, a .txt list of images, or a list of those, relative to
    ``path:`` or the yaml's folder), and ``names`` (a list or {index: name}) and/or ``nc``."""
    path = Path(path)
    config = read_yaml(path, "data file")
    if not isinstance(config, dict) or "train" not in config:
        raise SpdyError(f"data file {path} needs a 'train' entry (a folder of images), as yolov5's data.yaml has")
    root = path.parent / str(config.get("path") or "")
    names = _names(config, path)
    sources = config["train"] if isinstance(config["train"], list) else [config["train"]]
    train = [image for source in sources for image in _images(root / str(source), path)]
    if not train:
        raise SpdyError(f"data file {path}: no images found in train {config['train']!r}")
    missing = [image for image in train if not image.is_file()]
    if missing:
        raise SpdyError(f"data file {path}: {len(missing)} training image(s) do not exist, e.g. {missing[0]}")
    return DetectionData(train, names)


def _names(config: dict, path: Path) -> list[str]:
    names, nc = config.get("names"), config.get("nc")
    if isinstance(names, dict):
        names = [str(names[key]) for key in sorted(names)]
    if names is None and isinstance(nc, int) and nc > 0:
        names = [str(i) for i in range(nc)]
    if not isinstance(names, list) or not names or (nc is not None and nc != len(names)):
        raise SpdyError(f"data file {path}: needs 'names' (a list of class names) and/or 'nc' that agree, "
                        f"got names={config.get('names')!r}, nc={nc!r}")
    return [str(name) for name in names]


def _images(source: Path, data_file: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if source.is_file() and source.suffix == ".txt":
        lines = [line.strip() for line in source.read_text().splitlines() if line.strip()]
        return [source.parent / line for line in lines]
    raise SpdyError(f"data file {data_file}: train source {source} is neither a folder of images nor a .txt list")


def label_path(image: Path) -> Path:
    """yolov5's layout: ``.../images/x/a.jpg`` has its labels in ``.../labels/x/a.txt``."""
    parts = list(image.parts)
    if "images" not in parts:
        return image.with_suffix(".txt")
    index = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:index], "labels", *parts[index + 1:]).with_suffix(".txt")


def read_labels(path: Path, nc: int) -> np.ndarray:
    """Rows ``class x y w h`` (normalised centre and size); polygon rows ``class x1 y1 x2 y2 ...`` become
    their bounding boxes. A missing file is an image without objects."""
    rows = []
    if not path.is_file():
        return np.zeros((0, 5), np.float32)
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            values = []
        points = np.array(values[1:]).reshape(-1, 2) if len(values) >= 7 and len(values) % 2 == 1 else None
        if points is not None:
            (x0, y0), (x1, y1) = points.min(0), points.max(0)
            values = [values[0], (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
        if len(values) != 5 or not values[0].is_integer() or not 0 <= values[0] < nc \
                or not all(0 <= v <= 1 for v in values[1:]):
            raise SpdyError(f"{path}:{number}: expected 'class x y w h' with a class below {nc} and "
                            f"normalised coordinates, got {line.strip()!r}")
        rows.append(values)
    return np.array(rows, np.float32).reshape(-1, 5)


class YoloDataset(Dataset):
    """Images letterboxed to ``size`` x ``size`` (aspect kept, grey padding) with their boxes moved to match;
    flipped left-right with probability ``fliplr``."""

    def __init__(self, images: list[Path], nc: int, size: int, fliplr: float = 0.0) -> None:
        self.images, self.size, self.fliplr = images, size, fliplr
        self.labels = [read_labels(label_path(image), nc) for image in images]
        if not any(label_path(image).is_file() for image in images):
            raise SpdyError(f"no label files found for the images in {images[0].parent}: yolov5's layout keeps "
                            f"them in a sibling 'labels' folder, e.g. {label_path(images[0])}")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            with Image.open(self.images[index]) as opened:
                image = opened.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise SpdyError(f"cannot read image {self.images[index]}: {exc}") from None
        image, labels = letterbox(image, self.labels[index], self.size)
        pixels = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)
        labels = torch.from_numpy(labels)
        if self.fliplr and float(torch.rand(())) < self.fliplr:
            pixels, labels[:, 1] = pixels.flip(-1), 1 - labels[:, 1]
        return pixels.contiguous(), labels


def letterbox(image: Image.Image, labels: np.ndarray, size: int) -> tuple[Image.Image, np.ndarray]:
    """Resize the longer side to ``size``, centre on a grey square, and move the normalised boxes with it."""
    width, height = image.size
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (size - new_w) // 2, (size - new_h) // 2
    canvas = Image.new("RGB", (size, size), (PAD, PAD, PAD))
    canvas.paste(image.resize((new_w, new_h), Image.BILINEAR), (left, top))
    moved = labels.copy()
    moved[:, 1] = (labels[:, 1] * new_w + left) / size
    moved[:, 2] = (labels[:, 2] * new_h + top) / size
    moved[:, 3] = labels[:, 3] * new_w / size
    moved[:, 4] = labels[:, 4] * new_h / size
    return canvas, moved


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[B, 3, S, S]`` in [0, 1] and targets ``[N, 6]`` rows ``image_index, class, x, y, w, h``."""
    images = torch.stack([image for image, _ in batch])
    targets = torch.cat([torch.cat([torch.full((len(labels), 1), float(i)), labels], 1)
                         for i, (_, labels) in enumerate(batch)])
    return images, targets
