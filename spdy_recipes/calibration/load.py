"""``load_calibration``: which source reads a calibration argument (see the package's docstring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SpdyError
from ..models import ModelBundle
from .builtin import BUILTIN_SOURCES, from_builtin
from .datasets import from_dataset, is_saved_dataset
from .images import from_image_folder
from .sets import CalibrationSet, Request
from .tensors import from_tensor_file
from .text import from_texts, read_lines


def load_calibration(
    source: str, bundle: ModelBundle, samples: int, holdout: int, seed: int = 0
) -> tuple[CalibrationSet, CalibrationSet]:
    """Read ``source`` into (calibration split of ``samples``, held-out split of ``holdout``), disjoint and seeded."""
    if samples < 1:
        raise SpdyError(f"calibration needs at least 1 sample, got {samples}")
    if holdout < 0:
        raise SpdyError(f"held-out samples cannot be negative, got {holdout} (0 gives no held-out split)")
    request = Request(bundle, samples, holdout, np.random.default_rng(seed))
    if source.startswith("builtin:"):
        return from_builtin(source, request)
    path = Path(source)
    if not path.exists():
        raise SpdyError(f"calibration data {source!r} does not exist")
    if path.is_dir():
        return from_dataset(path, request) if is_saved_dataset(path) else from_image_folder(path, request)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".npy"):
        return from_tensor_file(path, request)
    if suffix == ".txt":
        return from_texts(read_lines(path), None, str(path), request)
    raise SpdyError(
        f"calibration data {path}: unknown extension {suffix or '(none)'!r}; expected an image folder, "
        f".pt, .npy, .txt, a folder saved by datasets, or one of {', '.join(BUILTIN_SOURCES)}"
    )
