"""Image classification data: an ImageFolder or a saved tensor dataset."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from spdy_recipes.errors import SpdyError

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


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
