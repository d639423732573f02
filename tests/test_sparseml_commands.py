"""SparseML's own training commands train our recipes unchanged.

Each test generates a recipe with ``spdy-recipe generate`` on a recorded real profile of the model the command
builds (tests/recorded.py), runs the real SparseML command on tiny offline data, and reads the checkpoint the
command writes: every recipe layer must be at its target sparsity (within 0.5%)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from integrations.huggingface.data import make_text_classification
from integrations.huggingface.train import MINILM
from integrations.torchvision.example_data import make_image_folder
from spdy_recipes.cli import main
from spdy_recipes.emit.read import read_recipe
from spdy_recipes.models import load_model
from spdy_recipes.models.oneshot import weight_sparsity
from spdy_recipes.solve.settings import best_reachable
from spdy_recipes.verify import SPARSITY_TOLERANCE, load_trained

from .recorded import RECORDINGS, recorded_profile
from .toy_models import write_tiny_bert_task

BIN = Path(sys.executable).parent
CLASSES = 5  # the trainer reports top-5 accuracy: fewer classes fail in torch.topk
IMAGE_ARGS = ["--pretrained", "false", "--device", "cpu", "--batch-size", "8", "--workers", "0",
              "--train-crop-size", "64", "--val-resize-size", "64", "--val-crop-size", "64"]


def _generate(recording: str, spec: str, out: Path) -> tuple[Path, dict[str, float], str]:
    """Generate a gmp recipe for ``spec`` on the recorded profile, 60% of the way to its best reachable speedup;
    return its path, its per-layer targets and what generate printed to stderr."""
    profile, path = recorded_profile(recording)
    rec = RECORDINGS[recording]
    speedup = 1 + 0.6 * (best_reachable(profile) - 1)
    args = ["generate", "--model", spec, "--input-shape", ",".join(map(str, rec.shape)), "--batch-size",
            str(rec.batch_size), "--hw", str(path), "--speedup", f"{speedup:.4f}", "--method", "gmp",
            "--epochs", "2", "-o", str(out)]
    if rec.num_classes:
        args += ["--num-classes", str(rec.num_classes)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    targets = {name: float(value) for name, value in read_recipe(str(out)).targets.items()}
    assert targets and all(0 < value < 1 for value in targets.values())
    return out, targets, result.stderr


def _run(command: str, args: list[str], cwd: Path, **env) -> None:
    """Run SparseML's console script ``command`` offline in ``cwd``; fail with the end of its output."""
    environment = {**os.environ, "NM_DISABLE_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "2", **env}
    result = subprocess.run([str(BIN / command), *map(str, args)], cwd=cwd, env=environment, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


def _assert_at_targets(spec: str, recording: str, checkpoint: Path, targets: dict[str, float]) -> None:
    """Every recipe layer of the weights the command wrote is at its target sparsity, within 0.5%."""
    rec = RECORDINGS[recording]
    bundle = load_model(spec, 1, rec.shape, num_classes=rec.num_classes)
    reached = weight_sparsity(load_trained(bundle, str(checkpoint)).module, list(targets))
    print(f"{checkpoint}: {len(targets)} layers")  # shown with -s, and on failure
    for name, target in targets.items():
        print(f"  {name}: target {target:.4f}, reached {reached[name]:.4f}")
    assert all(abs(reached[name] - target) <= SPARSITY_TOLERANCE for name, target in targets.items())


@pytest.fixture(scope="module")
def images(module_dir) -> Path:
    """An ImageFolder with train/ and val/, as sparseml.image_classification.train reads --dataset-path."""
    make_image_folder(module_dir / "images" / "train", classes=CLASSES, per_class=8, size=64)
    make_image_folder(module_dir / "images" / "val", classes=CLASSES, per_class=2, size=64, seed=1)
    return module_dir / "images"


def test_image_classification_train_with_a_registry_key(images, tmp_path):
    """--arch-key resnet18 builds SparseML's registry ResNet: the recipe is generated for sparseml:resnet18."""
    spec = "sparseml:resnet18"
    recipe, targets, stderr = _generate("sparseml-resnet18-5", spec, tmp_path / "recipe.yaml")
    assert any(name.startswith("sections.") for name in targets)  # the registry model's names, not torchvision's
    assert "warning:" not in stderr
    _run("sparseml.image_classification.train", ["--recipe", recipe, "--dataset-path", images, "--arch-key",
                                                 "resnet18", "--output-dir", tmp_path / "out", *IMAGE_ARGS],
         tmp_path)
    _assert_at_targets(spec, "sparseml-resnet18-5", tmp_path / "out" / "checkpoint.pth", targets)


def test_image_classification_train_with_a_torchvision_only_key(images, tmp_path):
    """A key the registry lacks (densenet121) makes the trainer build torchvision's model and load torchvision's
    ImageNet weights whatever --pretrained says; offline they come from $TORCH_HOME's cache, which this test
    fills with seeded weights of the right file name, as a download would."""
    import torchvision

    spec = "torchvision:densenet121"
    recipe, targets, stderr = _generate("densenet121-5", spec, tmp_path / "recipe.yaml")
    assert "warning:" not in stderr  # densenet121 is not a registry key: the trainer builds torchvision's model
    cache = tmp_path / "torch-home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(0)
    url = torchvision.models.DenseNet121_Weights.DEFAULT.url
    torch.save(torchvision.models.densenet121().state_dict(), cache / url.rsplit("/", 1)[1])
    _run("sparseml.image_classification.train", ["--recipe", recipe, "--dataset-path", images, "--arch-key",
                                                 "densenet121", "--output-dir", tmp_path / "out", *IMAGE_ARGS],
         tmp_path, TORCH_HOME=str(tmp_path / "torch-home"))
    _assert_at_targets(spec, "densenet121-5", tmp_path / "out" / "checkpoint.pth", targets)


def test_image_classification_train_with_an_int8_recipe(images, tmp_path):
    """An INT8 recipe (block-4 pruning, then the legacy QuantizationModifier's quantization-aware training)
    trains unchanged in SparseML's own trainer: its checkpoint holds the fake-quantized model, every layer at its
    block-4 target once the recipe's quantization structure is rebuilt (``verify --trained``'s loading)."""
    from spdy_recipes.deployment import Deployment
    from spdy_recipes.emit import RecipeSettings
    from spdy_recipes.emit.recipe import render_recipe
    from spdy_recipes.models.quantize import holds_quantization, is_quantized
    from spdy_recipes.models.weights import read_state_dict
    from spdy_recipes.solve.settings import solve

    spec, recording = "sparseml:resnet18", "sparseml-resnet18-5"
    profile, _ = recorded_profile(recording)
    plan = solve(profile, 1 + 0.6 * (best_reachable(profile) - 1))
    # 4 epochs: block-4 pruning over the first 2, quantization-aware training over the last 2
    text = render_recipe(plan.pruned, RecipeSettings(method="gmp", epochs=4, pruning_end_fraction=0.5, init_lr=0.01),
                         {}, ["INT8 test recipe"], Deployment("int8"))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    _run("sparseml.image_classification.train", ["--recipe", recipe, "--dataset-path", images, "--arch-key",
                                                 "resnet18", "--output-dir", tmp_path / "out", *IMAGE_ARGS],
         tmp_path)
    checkpoint = tmp_path / "out" / "checkpoint.pth"
    assert holds_quantization(read_state_dict(checkpoint))
    rec = RECORDINGS[recording]
    trained = load_trained(load_model(spec, 1, rec.shape, num_classes=rec.num_classes), str(checkpoint), str(recipe))
    assert is_quantized(trained.module)
    reached = weight_sparsity(trained.module, list(plan.pruned))
    assert all(abs(reached[name] - target) <= SPARSITY_TOLERANCE for name, target in plan.pruned.items()), reached


def test_generate_names_the_spec_for_the_registry_model(tmp_path):
    """torchvision:resnet18's recipe names torchvision's layers; the trainer would build the registry's ResNet."""
    _, targets, stderr = _generate("resnet18", "torchvision:resnet18", tmp_path / "recipe.yaml")
    assert any(name.startswith("layer") for name in targets)
    warning = [line for line in stderr.splitlines() if line.startswith("warning:") and "arch-key" in line]
    assert len(warning) == 1
    assert "--model sparseml:resnet18" in warning[0] and "--arch-key torchvision.resnet18" in warning[0]


ACCURACY_SCRIPT = '''import datasets


class Accuracy(datasets.Metric):
    def _info(self):
        return datasets.MetricInfo(description="accuracy", citation="", features=datasets.Features(
            {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}))

    def _compute(self, predictions, references):
        return {"accuracy": sum(int(p == r) for p, r in zip(predictions, references)) / len(references)}
'''


@pytest.fixture(scope="module")
def sentences(module_dir) -> Path:
    """Text classification data as JSON lines of {"sentence", "label"}, and the "accuracy" metric script that
    the command loads with datasets.load_metric: from the hub when online, from ./accuracy/ first."""
    import json

    folder = make_text_classification(module_dir / "raw", samples=32)
    out = module_dir / "sentences"
    out.mkdir()
    for split in ("train", "eval"):
        rows = [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]
        (out / f"{split}.json").write_text("".join(json.dumps({"sentence": row["text"], "label": row["label"]})
                                                   + "\n" for row in rows))
    (out / "accuracy").mkdir()
    (out / "accuracy" / "accuracy.py").write_text(ACCURACY_SCRIPT)
    return out


@pytest.mark.parametrize("model", ["tiny-bert", "minilm"])
def test_transformers_text_classification(model, sentences, tmp_path):
    """sparseml.transformers.text_classification builds BertForSequenceClassification from the folder: the
    recipe is generated for hf:DIR:BertForSequenceClassification, whose layers are named bert.*."""
    if model == "minilm":
        folder, recording = Path(MINILM), "minilm-classification"
    else:
        folder, recording = write_tiny_bert_task(tmp_path / "tiny-bert", Path(MINILM)), "tiny-bert-task"
    spec = f"hf:{folder}:BertForSequenceClassification"
    recipe, targets, stderr = _generate(recording, spec, tmp_path / "recipe.yaml")
    assert all(name.startswith("bert.") or name == "classifier.weight" for name in targets)
    assert "warning:" not in stderr
    out = tmp_path / "out"
    _run("sparseml.transformers.text_classification",
         ["--model_name_or_path", folder, "--recipe", recipe, "--train_file", sentences / "train.json",
          "--validation_file", sentences / "eval.json", "--output_dir", out, "--do_train", "--do_eval",
          "--per_device_train_batch_size", "8", "--max_seq_length", str(RECORDINGS[recording].shape[0]),
          "--distill_teacher", "disable", "--use_cpu", "--report_to", "none", "--seed", "0"],
         sentences)
    _assert_at_targets(spec, recording, out, targets)


# --- the spec and its checks (no engine, no training) -------------------------------------------------------


def test_a_sparseml_spec_builds_the_registry_model_with_the_data_class_count():
    bundle = load_model("sparseml:resnet18", 1, num_classes=7)
    assert type(bundle.module).__module__.startswith("sparseml.")
    assert bundle.input_shape == (3, 224, 224)  # the registry's own input shape
    logits, _ = bundle.module(bundle.inputs["input"])  # the registry's models return (logits, softmax)
    assert logits.shape == (1, 7)
    assert bundle.num_classes == 7


def test_bad_sparseml_specs_and_class_counts_fail_in_one_line(tmp_path):
    from .cli_helpers import assert_clean_failure

    out = tmp_path / "r.yaml"
    base = ["generate", "--hw", "local", "--speedup", "1.5", "-o", out]
    assert_clean_failure([*base, "--model", "sparseml:resnet181"], "did you mean resnet18", out)
    assert_clean_failure([*base, "--model", "sparseml:ssd_resnet18"], "is a detection model", out)
    assert_clean_failure([*base, "--model", "yolov5:yolov5n.yaml", "--num-classes", "3"], "nc in the config", out)
    assert_clean_failure([*base, "--model", "torchvision:resnet18", "--num-classes", "0"], "positive count", out)


def test_zero_initialised_norm_scales_are_set_to_one_for_timing_but_not_in_loaded_weights(tmp_path):
    """SparseML's ResNets start each residual branch's last BN at 0: the engine would fold the convolution before
    it into zeros, timing it as 100% sparse. Fresh models get scale 1; loaded weights stay as they are."""
    from sparseml.pytorch.models import ModelRegistry

    from spdy_recipes.models.spec import NORMS, unit_scale_norms

    registry_model = ModelRegistry.create("resnet18", pretrained=False)
    zero = [name for name, layer in registry_model.named_modules()
            if isinstance(layer, NORMS) and not layer.weight.any()]
    assert zero  # the init this guards against
    assert unit_scale_norms(registry_model) == zero
    bundle = load_model("sparseml:resnet18", 1, (3, 32, 32))
    assert all(layer.weight.all() for layer in bundle.module.modules() if isinstance(layer, NORMS))
    torch.save(ModelRegistry.create("resnet18", pretrained=False).state_dict(), tmp_path / "w.pt")
    loaded = load_model("sparseml:resnet18", 1, (3, 32, 32), weights=str(tmp_path / "w.pt"))
    assert not dict(loaded.module.named_modules())[zero[0]].weight.any()


def test_trainer_notes_name_the_spec_the_sparseml_command_needs():
    import transformers

    from spdy_recipes.models.sparseml_registry import trainer_note

    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64)
    note = trainer_note("hf:/m", transformers.BertModel(config))
    assert "--model hf:/m:BertForSequenceClassification" in note and "'bert.'" in note
    assert trainer_note("hf:/m:BertForSequenceClassification", transformers.BertForSequenceClassification(config)) \
        is None
    assert trainer_note("torchvision:densenet121", nn.Linear(1, 1)) is None  # not a registry key
    assert trainer_note("sparseml:resnet18", nn.Linear(1, 1)) is None
