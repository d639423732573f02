"""``spdy-train-yolov5``: train a yolov5 package model on YOLO-format data with an SPDY recipe applied by SparseML.

Runs in one process, or in several with ``torchrun --nproc-per-node=N -m integrations.yolov5.train ...``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from spdy_recipes.errors import SpdyError, fail_cleanly

from ..common.artifacts import export_model, save_checkpoint, save_final
from ..common.cli import log, recipe_options
from ..common.distributed import Distributed, distributed_run
from ..common.logs import route_sparseml_logs
from ..common.loop import train_with_recipe
from ..common.recipe import LoadedRecipe, load_recipe, parse_recipe_args
from ..common.report import format_report, require_targets, save_report, sparsity_report
from .data import YoloDataset, collate, read_data_yaml
from .example_data import make_detection_dataset
from .model import build_model, detection_loss, load_hyp, load_weights, make_optimizer, resolve_cfg


@click.command()
@click.option("--cfg", default="yolov5n.yaml", show_default=True,
              help="model yaml: a path, or one the yolov5 package ships (yolov5n/s/m/l/x.yaml)")
@click.option("--weights", default=None, help="state_dict to start from; tensors that fit are loaded [default: random]")
@click.option("--data", default=None, help="a yolov5 data.yaml [default: example data written to OUTPUT_DIR]")
@click.option("--img-size", default=640, show_default=True, type=click.IntRange(min=32),
              help="square training size in pixels (a multiple of the model's stride)")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1),
              help="total over all processes, as in yolov5's train.py")
@click.option("--hyp", default=None, help="hyperparameter yaml [default: yolov5's hyp.scratch-low.yaml]")
@recipe_options
@fail_cleanly
def main(cfg, weights, data, img_size, batch_size, hyp, recipe, recipe_args, output_dir, seed):
    """Train a YOLOv5 model on DATA with RECIPE's pruning schedule and yolov5's loss; write checkpoints,
    model.pt, final_recipe.yaml, model.onnx and a per-layer sparsity report to OUTPUT_DIR."""
    args = parse_recipe_args(recipe_args)
    with distributed_run() as dist:
        _train(dist, cfg, weights, data, img_size, batch_size, hyp, recipe, args, Path(output_dir), seed)


def _train(dist: Distributed, cfg: str, weights: str | None, data: str | None, img_size: int, batch_size: int,
           hyp_path: str | None, recipe_path: str, recipe_args: dict, out: Path, seed: int) -> None:
    if batch_size % dist.world_size:
        raise SpdyError(f"--batch-size {batch_size} must be a multiple of the {dist.world_size} processes")
    _seed(seed)
    hyp = load_hyp(hyp_path)
    cfg_path = resolve_cfg(cfg)
    dataset = read_data_yaml(data or _example_data(out, img_size, dist))
    model = build_model(cfg_path, dataset.names, hyp, img_size)
    if weights:
        loaded, total = load_weights(model, weights)
        if dist.is_main:
            log(f"weights: {loaded}/{total} tensors loaded from {weights}")
    recipe = load_recipe(recipe_path, recipe_args, model, spec=f"yolov5:{cfg}")
    route_sparseml_logs(out, dist.rank)
    images = YoloDataset(dataset.train, dataset.nc, img_size, fliplr=float(hyp.get("fliplr", 0.0)))
    loader, set_epoch = _loader(images, batch_size, dist, seed)
    if dist.is_main:
        log(f"training {cfg_path.name} ({dataset.nc} classes) on {len(images)} images at {img_size} px for "
            f"{recipe.epochs:g} epochs, {len(loader)} steps per epoch and process, {dist.world_size} process(es)")
        if not recipe.manager.learning_rate_modifiers:
            log(f"the recipe sets no learning rate: training at the hyp's lr0 {hyp['lr0']:g} throughout")

    def on_epoch_end(epoch: int, loss: float) -> None:
        if dist.is_main:
            save_checkpoint(out / "checkpoints" / f"epoch-{epoch + 1:03d}.pt", model, epoch + 1, recipe.manager, loss)

    losses = train_with_recipe(model, recipe, make_optimizer(model, batch_size), loader, len(loader),
                               detection_loss(model, dist.world_size), dist, on_epoch_end, log, set_epoch)
    agree = dist.replicas_agree(model)
    if dist.is_main:
        _finish(model, recipe, out, img_size, cfg, {"processes": dist.world_size, "replicas_agree": agree,
                                                    "epochs": len(losses), "losses": losses})


def _finish(model: nn.Module, recipe: LoadedRecipe, out: Path, img_size: int, cfg: str, extra: dict) -> None:
    """Save the weights and final recipe, report every layer's sparsity, export ONNX, then check the run."""
    rows = sparsity_report(model, recipe.targets)
    save_report(rows, out / "sparsity_report.json", recipe.path, extra)
    save_final(out, model, recipe.manager)
    model.model[-1].export = True  # Detect returns one tensor, (batch, anchors x cells, 5 + classes)
    export_model(model, {"images": torch.zeros(1, 3, img_size, img_size)}, out / "model.onnx", f"yolov5:{cfg}")
    click.echo(format_report(rows))
    if not extra["replicas_agree"]:
        raise SpdyError("the processes ended with different weights; the DDP run is inconsistent")
    require_targets(rows)
    log(f"wrote {out}/model.pt, model.onnx, final_recipe.yaml and sparsity_report.json")


def _loader(images: YoloDataset, batch_size: int, dist: Distributed, seed: int
            ) -> tuple[DataLoader, Callable[[int], None]]:
    """Batches of ``batch_size / processes`` from this process's shard, and how to reshuffle them per epoch."""
    sampler = dist.sampler(images, shuffle=True, seed=seed)
    loader = DataLoader(images, batch_size // dist.world_size, shuffle=sampler is None, sampler=sampler,
                        collate_fn=collate, generator=torch.Generator().manual_seed(seed))
    return loader, (sampler.set_epoch if sampler else lambda _: None)


def _example_data(out: Path, img_size: int, dist: Distributed) -> Path:
    """The example data set in ``out/example-data`` (written by the main process once)."""
    path = out / "example-data" / "data.yaml"
    if dist.is_main and not path.is_file():
        log(f"no --data: writing the example data set to {path.parent}")
        make_detection_dataset(path.parent, size=img_size)
    dist.barrier()
    return path


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


if __name__ == "__main__":
    main()
