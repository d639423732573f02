"""``spdy-train-yolov5``: train a yolov5 package model on YOLO-format data with an SPDY recipe applied by SparseML.

Runs in one process, or in several with ``torchrun --nproc-per-node=N -m integrations.yolov5.train ...``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import click
import numpy as np
import torch
from torch.utils.data import DataLoader

from integrations.common.artifacts import export_model, save_checkpoint, save_final
from integrations.common.distributed import Distributed
from integrations.common.loop import train_with_recipe
from integrations.common.recipe import load_recipe, parse_recipe_args
from integrations.common.report import format_report, require_targets, save_report, sparsity_report
from spdy_recipes.errors import SpdyError

from .data import YoloDataset, collate, make_detection_dataset, read_data_yaml
from .model import build_model, detection_loss, load_hyp, load_weights, make_optimizer, resolve_cfg


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--cfg", default="yolov5n.yaml", show_default=True,
              help="Model yaml: a path, or one the yolov5 package ships (yolov5n/s/m/l/x.yaml).")
@click.option("--weights", default=None, help="Initial weights: a state_dict .pt (tensors that fit are loaded).")
@click.option("--data", default=None,
              help="A yolov5 data.yaml. Default: write a small example data set into OUTPUT_DIR/example-data.")
@click.option("--img-size", type=int, default=640, show_default=True, help="Square training size in pixels.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Total batch over all processes.")
@click.option("--recipe", required=True, help="The SparseML recipe (from `spdy-recipe generate --model yolov5:CFG`).")
@click.option("--recipe-args", default=None, help='JSON overrides of recipe variables, e.g. \'{"num_epochs": 30}\'.')
@click.option("--output-dir", required=True, type=click.Path(file_okay=False),
              help="Where model.pt, final_recipe.yaml, sparsity_report.json, model.onnx and checkpoints/ go.")
@click.option("--hyp", default=None, help="Hyperparameter yaml. Default: yolov5's hyp.scratch-low.yaml.")
@click.option("--seed", type=int, default=0, show_default=True)
def main(cfg, weights, data, img_size, batch_size, recipe, recipe_args, output_dir, hyp, seed):
    """Train a YOLOv5 model with a pruning recipe for the recipe's epochs, then save the pruned weights, the
    final recipe, a per-layer sparsity report and an ONNX export; fail if a layer misses its target."""
    try:
        train(cfg, weights, data, img_size, batch_size, recipe, recipe_args, Path(output_dir), hyp, seed)
    except SpdyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def train(cfg: str, weights: str | None, data: str | None, img_size: int, batch_size: int, recipe: str,
          recipe_args: str | None, out: Path, hyp_path: str | None, seed: int) -> None:
    """The command's work; SpdyError on bad input or a missed target."""
    args = parse_recipe_args(recipe_args)
    dist = Distributed.from_environment()
    log = click.echo if dist.is_main else (lambda _: None)
    try:
        if batch_size < dist.world_size or batch_size % dist.world_size:
            raise SpdyError(f"--batch-size {batch_size} must be a multiple of the {dist.world_size} processes")
        _seed(seed)
        hyp = load_hyp(hyp_path)
        cfg_path = resolve_cfg(cfg)
        dataset = read_data_yaml(data or _example_data(out, img_size, dist))
        model = build_model(cfg_path, dataset.names, hyp, img_size)
        if weights:
            loaded, total = load_weights(model, weights)
            log(f"weights: {loaded}/{total} tensors loaded from {weights}")
        loaded_recipe = load_recipe(recipe, args, model)
        images = YoloDataset(dataset.train, dataset.nc, img_size, fliplr=float(hyp.get("fliplr", 0.0)))
        sampler = dist.sampler(images, shuffle=True, seed=seed)
        loader = DataLoader(images, batch_size // dist.world_size, shuffle=sampler is None, sampler=sampler,
                            collate_fn=collate, generator=torch.Generator().manual_seed(seed))
        log(f"model {cfg_path.name}: {sum(p.numel() for p in model.parameters()):,} parameters, {dataset.nc} "
            f"classes; {len(images)} training images at {img_size} px; recipe {loaded_recipe.path.name}: "
            f"{len(loaded_recipe.targets)} layers, {loaded_recipe.epochs:g} epochs of {len(loader)} steps"
            f"{f' on {dist.world_size} processes' if dist.active else ''}")
        optimizer = make_optimizer(model, batch_size)

        def on_epoch_end(epoch: int, loss: float) -> None:
            if dist.is_main:
                save_checkpoint(out / "checkpoints" / f"epoch-{epoch + 1:03d}.pt", model, epoch + 1,
                                loaded_recipe.manager, loss)

        losses = train_with_recipe(model, loaded_recipe, optimizer, loader, len(loader),
                                   detection_loss(model, dist.world_size), dist, on_epoch_end, log,
                                   sampler.set_epoch if sampler else lambda _: None)
        agree = dist.replicas_agree(model)
        if dist.is_main:
            _finish(model, loaded_recipe, out, img_size, cfg, losses, agree, dist.world_size)
    finally:
        dist.close()


def _finish(model, recipe, out: Path, img_size: int, cfg: str, losses: list[float], agree: bool,
            processes: int) -> None:
    """Save the weights and final recipe, report every layer's sparsity, check the targets, export ONNX."""
    save_final(out, model, recipe.manager)
    rows = sparsity_report(model, recipe.targets)
    click.echo(format_report(rows))
    save_report(rows, out / "sparsity_report.json", recipe.path,
                {"replicas_agree": agree, "processes": processes, "epochs": len(losses), "losses": losses})
    require_targets(rows)
    model.model[-1].export = True  # Detect returns one tensor, (batch, anchors, 5 + classes)
    export_model(model, {"images": torch.zeros(1, 3, img_size, img_size)}, out / "model.onnx", f"yolov5:{cfg}")
    click.echo(f"saved {out / 'model.pt'}, {out / 'final_recipe.yaml'}, {out / 'sparsity_report.json'} "
               f"and {out / 'model.onnx'}")


def _example_data(out: Path, img_size: int, dist: Distributed) -> Path:
    """The example data set in ``out/example-data`` (written by the main process once)."""
    path = out / "example-data" / "data.yaml"
    if dist.is_main and not path.is_file():
        click.echo(f"no --data: writing the example data set to {path.parent}")
        make_detection_dataset(path.parent, size=img_size)
    dist.barrier()
    return path


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


if __name__ == "__main__":
    main()
