"""YOLOv5 from the ``yolov5`` package, set up as its train.py does: hyperparameters, classes, weights, loss."""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path

import torch
from torch import nn

from spdy_recipes.errors import SpdyError
from spdy_recipes.files import read_yaml
from spdy_recipes.models.weights import read_state_dict

NOMINAL_BATCH = 64  # yolov5's nbs: weight decay is scaled by batch / 64
HYP_KEYS = ("lr0", "momentum", "weight_decay", "box", "cls", "cls_pw", "obj", "obj_pw", "anchor_t", "fl_gamma")


def package_dir() -> Path:
    """The installed ``yolov5`` package (found without importing it)."""
    spec = find_spec("yolov5")
    if spec is None or not spec.submodule_search_locations:
        raise SpdyError("the yolov5 package is not installed (pip install yolov5==7.0.14)")
    return Path(spec.submodule_search_locations[0])


@contextlib.contextmanager
def quiet_yolov5() -> Iterator[None]:
    """Import yolov5 without its warnings, and silence its INFO logging (layer summaries, class overrides)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # yolov5 imports pkg_resources, which warns
        importlib.import_module("yolov5.utils.general")  # configures the "yolov5" logger on first import
    logger = logging.getLogger("yolov5")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def resolve_cfg(cfg: str) -> Path:
    """A model yaml: a path, or the name of one that the yolov5 package ships (yolov5n.yaml, ...)."""
    path = Path(cfg)
    if path.is_file():
        return path
    shipped = package_dir() / "models" / cfg
    if shipped.is_file():
        return shipped
    names = sorted(p.name for p in (package_dir() / "models").glob("yolov5*.yaml"))
    raise SpdyError(f"unknown yolov5 config {cfg!r}: not a file, and the yolov5 package ships {', '.join(names)}")


def load_hyp(path: str | None) -> dict:
    """Training hyperparameters: ``path``, or yolov5's hyp.scratch-low.yaml."""
    hyp_path = Path(path) if path else package_dir() / "data" / "hyps" / "hyp.scratch-low.yaml"
    hyp = read_yaml(hyp_path, "hyperparameter file")
    missing = [key for key in HYP_KEYS if not isinstance(hyp, dict) or not isinstance(hyp.get(key), (int, float))]
    if missing:
        raise SpdyError(f"hyperparameter file {hyp_path} lacks numeric {', '.join(missing)} "
                        f"(see yolov5's data/hyps/hyp.scratch-low.yaml)")
    return hyp


def build_model(cfg: Path, names: list[str], hyp: dict, img_size: int) -> nn.Module:
    """``Model(cfg, ch=3, nc=len(names))`` with ``hyp`` scaled to its detection layers, classes and image size
    and attached with ``nc`` and ``names``, as yolov5's train.py does."""
    with quiet_yolov5():
        from yolov5.models.yolo import Model

        try:
            model = Model(str(cfg), ch=3, nc=len(names), anchors=hyp.get("anchors"))
        except Exception as exc:  # a bad cfg fails anywhere in parse_model
            raise SpdyError(f"cannot build yolov5 model from {cfg}: {type(exc).__name__}: {exc}") from None
    grid = max(int(model.stride.max()), 32)
    if img_size < grid or img_size % grid:
        raise SpdyError(f"--img-size {img_size} must be a multiple of the model's largest stride, {grid}")
    layers, nc = model.model[-1].nl, len(names)
    model.hyp = {**hyp, "box": hyp["box"] * 3 / layers, "cls": hyp["cls"] * nc / 80 * 3 / layers,
                 "obj": hyp["obj"] * (img_size / 640) ** 2 * 3 / layers, "label_smoothing": 0.0}
    model.nc, model.names = nc, names
    return model


def load_weights(model: nn.Module, path: str) -> tuple[int, int]:
    """Load the tensors of a state_dict (or a checkpoint holding one) whose names and shapes fit ``model``;
    anchors stay the cfg's, as in yolov5's train.py. Return (loaded, total)."""
    try:
        state = read_state_dict(path)
    except SpdyError as exc:
        if not str(exc).startswith("cannot read weights"):
            raise
        raise SpdyError(f"{exc}; convert a yolov5 checkpoint with torch.save(torch.load(F, weights_only=False)"
                        "['model'].float().state_dict(), 'weights.pt')") from None
    own = model.state_dict()
    fitting = {name: tensor for name, tensor in state.items() if name in own and "anchor" not in name
               and isinstance(tensor, torch.Tensor) and tensor.shape == own[name].shape}
    if not fitting:
        raise SpdyError(f"weights {path} have no tensor that fits the model (names like {next(iter(own))})")
    model.load_state_dict(fitting, strict=False)
    return len(fitting), len(own)


def make_optimizer(model: nn.Module, batch_size: int) -> torch.optim.Optimizer:
    """yolov5's SGD (Nesterov momentum; decay on weights but not on biases or norms), at ``hyp['lr0']``
    until the recipe's learning-rate modifiers take over."""
    from yolov5.utils.torch_utils import smart_optimizer

    hyp = model.hyp
    with quiet_yolov5():
        return smart_optimizer(model, "SGD", hyp["lr0"], hyp["momentum"],
                               hyp["weight_decay"] * batch_size / NOMINAL_BATCH)


def detection_loss(model: nn.Module, world_size: int) -> Callable[[nn.Module, tuple], torch.Tensor]:
    """A step's loss with yolov5's ComputeLoss (summed over the batch); times ``world_size`` under DDP, which
    averages gradients over processes, as yolov5's train.py does."""
    from yolov5.utils.loss import ComputeLoss

    compute = ComputeLoss(model)

    def step(wrapped: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, targets = batch
        loss, _ = compute(wrapped(images), targets)
        return loss.sum() * world_size

    return step
