"""``spdy-train-torchvision``: train a torchvision classifier with a recipe, report its sparsity, export it.

Runs alone or under ``torchrun --nproc-per-node N`` (gloo on CPU): the recipe is applied to the model
before DDP wraps it, so its layer names are the model's own.
"""

from __future__ import annotations

from pathlib import Path

import click
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from spdy_recipes.errors import SpdyError, fail_cleanly, warn
from spdy_recipes.models.weights import load_weights

from ..common.artifacts import export_model, save_checkpoint, save_final
from ..common.cli import log, recipe_options
from ..common.distributed import distributed_run
from ..common.logs import route_sparseml_logs
from ..common.loop import train_with_recipe
from ..common.recipe import load_recipe, parse_recipe_args
from ..common.report import format_report, require_targets, save_report, sparsity_report
from .data import load_dataset
from .example_data import make_image_folder


def build_model(name: str, num_classes: int | None, weights: str | None) -> nn.Module:
    """A torchvision model by name (random init, seeded by the caller), with optional state_dict."""
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        raise SpdyError(f"unknown torchvision classification model {name!r}")
    model = torchvision.models.get_model(name, weights=None, **({"num_classes": num_classes} if num_classes else {}))
    if weights:
        load_weights(model, weights, warn=warn)
    return model


AUX_LOSS_WEIGHT = 0.3  # GoogLeNet's auxiliary classifiers (Szegedy et al., CVPR 2015, section 5)


def classification_loss(criterion: nn.Module, output, labels: torch.Tensor) -> torch.Tensor:
    """The loss of a training forward pass. GoogLeNet and Inception-v3 return (logits, aux logits...) in
    training: the auxiliary heads add their loss at ``AUX_LOSS_WEIGHT``. They stay dense: they never run
    in eval, so no recipe prunes them."""
    if isinstance(output, torch.Tensor):
        return criterion(output, labels)
    main, *aux = [value for value in output if isinstance(value, torch.Tensor)]
    return criterion(main, labels) + AUX_LOSS_WEIGHT * sum(criterion(value, labels) for value in aux)


def _outputs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """How many classes ``model`` scores."""
    model.eval()
    with torch.no_grad():
        count = model(torch.zeros(1, *shape)).shape[-1]
    model.train()
    return int(count)


def accuracy(model: nn.Module, dataset: Dataset, batch_size: int) -> float:
    """Top-1 accuracy of ``model`` on ``dataset``."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in DataLoader(dataset, batch_size=batch_size):
            correct += int((model(images).argmax(1) == labels).sum())
    model.train()
    return correct / len(dataset)


@click.command()
@click.option("--model", "model_name", required=True, help="torchvision model name, e.g. resnet18")
@click.option("--weights", default=None, help="state_dict to start from [default: random init]")
@click.option("--num-classes", default=None, type=int, help="classifier outputs [default: the model's own]")
@click.option("--data", default=None, help="ImageFolder or .pt tensor dataset [default: example images made here]")
@click.option("--val-data", default=None, help="held-out ImageFolder or .pt file, scored at the end")
@click.option("--img-size", default=224, show_default=True, type=int, help="ImageFolder images are resized to this")
@click.option("--batch-size", default=32, show_default=True, type=int, help="per process")
@click.option("--momentum", default=0.9, show_default=True, type=float)
@click.option("--weight-decay", default=1e-4, show_default=True, type=float)
@recipe_options
@fail_cleanly
def main(model_name, weights, num_classes, data, val_data, img_size, batch_size, momentum, weight_decay, recipe,
         recipe_args, output_dir, seed):
    """Train MODEL on DATA with RECIPE's pruning schedule; write checkpoints, model.pt, model.onnx and a
    per-layer sparsity report to OUTPUT_DIR."""
    with distributed_run() as dist:
        _train(dist, model_name, weights, num_classes, data, val_data, img_size, batch_size, momentum,
               weight_decay, recipe, recipe_args, Path(output_dir), seed)


def _train(dist, model_name, weights, num_classes, data, val_data, img_size, batch_size, momentum, weight_decay,
           recipe_path, recipe_args, out_dir, seed) -> None:
    if batch_size < 1:
        raise SpdyError(f"--batch-size must be at least 1, got {batch_size}")
    args = parse_recipe_args(recipe_args)
    if data is None:
        data = out_dir / "example-data"
        if dist.is_main and not data.is_dir():
            make_image_folder(data, seed=seed)
        dist.barrier()
    dataset, classes = load_dataset(data, img_size, train=True)
    torch.manual_seed(seed)
    model = build_model(model_name, num_classes, weights)
    outputs = _outputs(model, tuple(dataset[0][0].shape))
    if classes > outputs:
        raise SpdyError(f"the data has {classes} classes but {model_name} has {outputs} outputs; set --num-classes")
    recipe = load_recipe(recipe_path, args, model, spec=f"torchvision:{model_name}")
    route_sparseml_logs(out_dir, dist.rank)
    sampler = dist.sampler(dataset, shuffle=True, seed=seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=sampler is None, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    if len(loader) == 0:
        raise SpdyError(f"{len(dataset)} images make no full batch of {batch_size} per process")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=momentum, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss()

    def step_loss(wrapped: nn.Module, batch) -> torch.Tensor:
        images, labels = batch
        return classification_loss(criterion, wrapped(images), labels)

    def on_epoch_end(epoch: int, loss: float) -> None:
        if dist.is_main:
            save_checkpoint(out_dir / "checkpoints" / f"epoch-{epoch + 1:03d}.pt", model, epoch + 1,
                            recipe.manager, loss)

    if dist.is_main:
        log(f"training {model_name} on {len(dataset)} images ({classes} classes) for {recipe.epochs:g} epochs, "
            f"{len(loader)} steps per epoch and process, {dist.world_size} process(es)")
    losses = train_with_recipe(model, recipe, optimizer, loader, len(loader), step_loss, dist, on_epoch_end, log,
                               sampler.set_epoch if sampler else lambda _: None)
    agree = dist.replicas_agree(model)
    if not dist.is_main:
        return
    rows = sparsity_report(model, recipe.targets)
    extra = {"processes": dist.world_size, "replicas_agree": agree, "epochs": len(losses), "losses": losses}
    if val_data:
        extra["val_accuracy"] = accuracy(model, load_dataset(val_data, img_size, train=False)[0], batch_size)
        log(f"held-out top-1 accuracy {extra['val_accuracy']:.3f}")
    save_report(rows, out_dir / "sparsity_report.json", recipe.path, extra)
    save_final(out_dir, model, recipe.manager)
    export_model(model, {"input": torch.randn(1, *dataset[0][0].shape)}, out_dir / "model.onnx", model_name)
    click.echo(format_report(rows))
    if not agree:
        raise SpdyError("the processes ended with different weights; the DDP run is inconsistent")
    require_targets(rows)
    log(f"wrote {out_dir}/model.pt, model.onnx, final_recipe.yaml and sparsity_report.json")


if __name__ == "__main__":
    main()
