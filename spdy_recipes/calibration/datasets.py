"""Folders written by ``datasets`` (``save_to_disk``): an image or a text column, and optional labels."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from ..errors import SpdyError, first_line
from ..models import ModelBundle
from .images import from_images
from .sets import CalibrationSet, Request
from .text import from_texts

if TYPE_CHECKING:
    import datasets

IMAGE_COLUMNS = ("image", "img")
TEXT_COLUMNS = ("text", "sentence")
LABEL_COLUMNS = ("label", "labels")


def is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or all(
        (path / name).is_file() for name in ("dataset_info.json", "state.json")
    )


def from_dataset(path: Path, request: Request) -> tuple[CalibrationSet, CalibrationSet]:
    import datasets

    try:
        data = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise SpdyError(f"cannot read the saved dataset {path}: {first_line(exc)}") from None
    where = f"the dataset {path}"
    if isinstance(data, datasets.DatasetDict):
        split = "train" if "train" in data else next(iter(data))
        data, where = data[split], f"{where} (split {split})"
    column = _dataset_column(data.column_names, request.bundle, where)
    label_column = next((c for c in LABEL_COLUMNS if c in data.column_names), None)
    labels = None if label_column is None else _integer_labels(data[label_column], label_column, where)
    where = f"column {column!r} of {where}"
    if column in IMAGE_COLUMNS:
        loaders = [partial(_dataset_image, data, column, row, where) for row in range(len(data))]
        return from_images(loaders, labels, where, request)
    texts = data[column]
    if not all(isinstance(text, str) for text in texts):
        raise SpdyError(f"{where} holds values that are not strings")
    return from_texts(texts, labels, where, request)


def _dataset_column(columns: list[str], bundle: ModelBundle, where: str) -> str:
    """The text column for hf models when there is one, else the image column, else the text column."""
    image = next((c for c in IMAGE_COLUMNS if c in columns), None)
    text = next((c for c in TEXT_COLUMNS if c in columns), None)
    column = text if bundle.kind == "hf" and "pixel_values" not in bundle.inputs and text else image or text
    if column is None:
        wanted = ", ".join(IMAGE_COLUMNS + TEXT_COLUMNS)
        raise SpdyError(f"{where} has no column named {wanted} (its columns: {', '.join(columns)})")
    return column


def _dataset_image(data: datasets.Dataset, column: str, row: int, where: str) -> Image.Image:
    value = data[row][column]
    if not isinstance(value, Image.Image):
        raise SpdyError(f"{where} holds {type(value).__name__} values, not images")
    return value.convert("RGB")


def _integer_labels(values: list, column: str, where: str) -> list[int]:
    if not all(isinstance(value, int) for value in values):
        raise SpdyError(f"column {column!r} of {where} holds labels that are not integer class indices")
    return list(values)
