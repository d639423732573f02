"""spdy-train-yolov5: the yolov5 package's Model and ComputeLoss trained with real SPDY recipes through SparseML."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw

from integrations.yolov5.data import YoloDataset, collate, letterbox, read_data_yaml
from integrations.yolov5.example_data import make_detection_dataset
from integrations.yolov5.model import build_model, load_hyp, load_weights, package_dir
from integrations.yolov5.train import main
from spdy_recipes.errors import SpdyError

from .integration_helpers import torchrun, torchrun_failure, write_test_recipe

IMG = 64  # px (the recipe comes from a profile recorded at 320 px: layer names do not depend on it)
IMAGES, BATCH = 32, 8  # 4 steps per epoch
EPOCHS = 4
SETTINGS = {  # mfac: a mask update every epoch = 4 steps = the gradients it buffers; blocks of 50 weights, as
    # its default of 2000 needs params x 2000 floats (14 GB for yolov5n) and minutes per update on CPU
    "gmp": {}, "acdc": {},
    "mfac": {"num_grads": 4, "pruning_start_fraction": 0.25, "update_frequency": 1.0, "fisher_block_size": 50},
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread, as torchrun's processes have: two crawl when the machine's other core is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workdir(module_dir) -> Path:
    return module_dir


@pytest.fixture(scope="module")
def cfg(workdir) -> Path:
    """yolov5n with 3 classes, so that the recipe's profile has the Detect head that is trained."""
    text = (package_dir() / "models" / "yolov5n.yaml").read_text()
    path = workdir / "yolov5n-3.yaml"
    path.write_text(re.sub(r"(?m)^nc: \d+", "nc: 3", text))
    return path


@pytest.fixture(scope="module")
def data(workdir) -> Path:
    return make_detection_dataset(workdir / "data", images=IMAGES, size=IMG, classes=3)


@pytest.fixture(scope="module")
def recipes(workdir):
    """``recipe(method, recording=...) -> (path, targets)``, written once per method and recorded profile
    (tests/recorded.py; by default YOLOv5n with a 3-class head, as ``cfg``)."""
    written: dict[tuple, tuple[Path, dict[str, float]]] = {}

    def recipe(method: str, recording: str = "yolov5n-3") -> tuple[Path, dict[str, float]]:
        if (method, recording) not in written:
            path = workdir / "recipes" / f"{method}-{len(written)}.yaml"
            targets = write_test_recipe(recording, method, path, EPOCHS, **SETTINGS[method])
            written[method, recording] = path, targets
        return written[method, recording]

    return recipe


def _args(cfg: Path, data: Path, recipe: Path, out: Path, *extra: str) -> list[str]:
    return ["--cfg", str(cfg), "--data", str(data), "--img-size", str(IMG), "--batch-size", str(BATCH),
            "--recipe", str(recipe), "--output-dir", str(out), *extra]


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def trained(workdir, cfg, data, recipes):
    """``trained(method) -> (output dir, targets, stderr)`` of one in-process run, trained once per method."""
    runs: dict[str, tuple[Path, dict[str, float], str]] = {}

    def train(method: str) -> tuple[Path, dict[str, float], str]:
        if method not in runs:
            recipe, targets = recipes(method)
            out = workdir / f"run-{method}"
            code, stdout, stderr = _run(_args(cfg, data, recipe, out))
            assert code == 0, stdout + stderr
            runs[method] = out, targets, stderr
        return runs[method]

    return train


def _zeros(state_path: Path, names) -> dict[str, float]:
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    return {name: float((state[name] == 0).sum()) / state[name].numel() for name in names}


def _report(out: Path) -> dict:
    return json.loads((out / "sparsity_report.json").read_text())


def test_example_data_is_yolo_format_and_deterministic(tmp_path, data):
    again = make_detection_dataset(tmp_path / "again", images=IMAGES, size=IMG, classes=3)
    read = read_data_yaml(data)
    assert read.names == ["rectangle", "ellipse", "triangle"] and len(read.train) == IMAGES
    for image in read.train:
        label = image.parents[2] / "labels" / "train" / f"{image.stem}.txt"
        twin = again.parent / "images" / "train" / image.name
        assert twin.read_bytes() == image.read_bytes()
        rows = [line.split() for line in label.read_text().splitlines()]
        assert rows and all(len(row) == 5 and row[0] in "012" for row in rows)
    assert (data.parent / "images" / "val").is_dir() and (data.parent / "labels" / "val").is_dir()


@pytest.mark.parametrize("method", ["gmp", "acdc", "mfac"])
def test_recipe_training_reaches_every_target(method, trained):
    out, targets, progress = trained(method)
    state = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    reached = _zeros(out / "model.pt", targets)
    for name, target in targets.items():
        assert reached[name] == pytest.approx(target, abs=0.005), name
    dense = [name for name in state if name.endswith("conv.weight") and name not in targets]
    assert all(value < 0.01 for value in _zeros(out / "model.pt", dense).values())
    report = _report(out)
    assert report["missed"] == [] and report["replicas_agree"] is True and report["processes"] == 1
    assert len(report["losses"]) == EPOCHS and all(math.isfinite(loss) for loss in report["losses"])
    assert len(re.findall(r"(?m)^epoch \d+/4: loss", progress)) == EPOCHS
    assert len(list((out / "checkpoints").glob("epoch-*.pt"))) == EPOCHS
    assert "EpochRangeModifier" in (out / "final_recipe.yaml").read_text()
    graph = onnx.load(str(out / "model.onnx")).graph
    assert len(graph.output) == 1
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == [1, 3 * sum(
        (IMG // s) ** 2 for s in (8, 16, 32)), 5 + 3]


def test_two_processes_reach_what_one_does(trained, workdir, cfg, data, recipes):
    single = trained("gmp")[0]
    out = workdir / "run-ddp"
    result = torchrun("integrations.yolov5.train", _args(cfg, data, recipes("gmp")[0], out))
    assert result.returncode == 0, torchrun_failure(result)
    assert "2 process(es)" in result.stderr
    report, alone = _report(out), _report(single)
    assert report["processes"] == 2 and report["replicas_agree"] is True and report["missed"] == []
    assert {name: layer["reached"] for name, layer in report["layers"].items()} == \
        {name: layer["reached"] for name, layer in alone["layers"].items()}
    assert len(list((out / "checkpoints").glob("epoch-*.pt"))) == EPOCHS


def test_recipe_for_another_model_fails_before_training(cfg, data, recipes, tmp_path):
    recipe, targets = recipes("gmp", "cnn")
    out = tmp_path / "out"
    code, stdout, stderr = _run(_args(cfg, data, recipe, out))
    assert code == 1
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and next(iter(targets)) in lines[0], stderr
    assert "epoch" not in stdout + stderr and not (out / "model.pt").exists() and not (out / "checkpoints").exists()


def test_recipe_args_set_the_epochs(cfg, data, recipes, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = _run(_args(cfg, data, recipes("gmp")[0], out, "--recipe-args", '{"num_epochs": 2}'))
    assert code == 0, stdout + stderr
    assert re.findall(r"(?m)^epoch (\d+)/2:", stderr) == ["1", "2"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-001.pt", "epoch-002.pt"]
    assert _report(out)["epochs"] == 2 and _report(out)["missed"] == []


@pytest.mark.parametrize("problem, message", [
    ("no-file", "does not exist"), ("no-train", "needs a 'train' entry"), ("bad-yaml", "not valid YAML"),
    ("names", "'names'"), ("no-images", "no images found"), ("no-labels", "no label files"),
    ("bad-label", "00000.txt:1"),
])
def test_bad_data_fails_with_one_line(problem, message, tmp_path):
    config = make_detection_dataset(tmp_path, images=2, size=32)
    edits = {
        "no-file": config.unlink, "no-train": lambda: config.write_text("nc: 3\n"),
        "bad-yaml": lambda: config.write_text("train: [images\n"),
        "names": lambda: config.write_text("train: images/train\nnc: 2\nnames: [a, b, c]\n"),
        "no-images": lambda: config.write_text("train: labels/train\nnc: 3\n"),
        "no-labels": lambda: shutil.rmtree(tmp_path / "labels"),
        "bad-label": lambda: (tmp_path / "labels" / "train" / "00000.txt").write_text("3 0.5 0.5 0.1 0.1\n"),
    }
    edits[problem]()
    with pytest.raises(SpdyError, match=re.escape(message)) as caught:
        read = read_data_yaml(config)
        YoloDataset(read.train, read.nc, IMG)
    assert "\n" not in str(caught.value)


def test_weights_load_into_a_fresh_model(trained, cfg, tmp_path):
    out, _, _ = trained("gmp")
    model = build_model(cfg, ["a", "b", "c"], load_hyp(None), IMG)
    loaded, total = load_weights(model, str(out / "model.pt"))
    state = torch.load(out / "model.pt", weights_only=True)
    assert loaded == total - 1  # all but Detect's anchors, which stay the cfg's
    assert all(torch.equal(tensor, state[name]) for name, tensor in model.state_dict().items())
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(SpdyError, match="cannot read weights"):
        load_weights(model, str(tmp_path / "junk.pt"))


def test_letterbox_moves_boxes_with_the_pixels():
    image = Image.new("RGB", (80, 40))
    ImageDraw.Draw(image).rectangle((20, 10, 59, 29), fill=(255, 255, 255))  # box centre (0.5, 0.5), size 0.5
    boxed, labels = letterbox(image, np.array([[2, 0.5, 0.5, 0.5, 0.5]], np.float32), 64)
    assert labels.tolist() == [[2, 0.5, 0.5, 0.5, 0.25]]  # 80x40 -> 64x32, 16 px of grey above and below
    inside = torch.nonzero(torch.from_numpy(np.asarray(boxed)[..., 0] > 127))
    assert inside.min(0).values.tolist() == [24, 16] and inside.max(0).values.tolist() == [39, 47]
    images, targets = collate([(torch.zeros(3, 64, 64), torch.from_numpy(labels))] * 2)
    assert images.shape == (2, 3, 64, 64) and targets[:, 0].tolist() == [0, 1] and targets.shape == (2, 6)


def test_an_int8_recipe_trains_block4_with_qat_and_exports_integer_ops(cfg, data, tmp_path):
    """An INT8 recipe (block-4 pruning, then SparseML's quantization-aware training) through the integration:
    every layer at its target (the run's own check) and model.onnx in integer convolutions."""
    import onnx

    from .integration_helpers import write_int8_test_recipe

    recipe = tmp_path / "int8.yaml"
    targets = write_int8_test_recipe("yolov5n-3", recipe, EPOCHS)
    out = tmp_path / "run-int8"
    code, stdout, stderr = _run(_args(cfg, data, recipe, out))
    assert code == 0, stdout + stderr  # the integration fails when a layer misses its target
    report = _report(out)
    assert report["missed"] == [] and set(report["layers"]) == set(targets)
    ops = [node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node]
    assert "QLinearConv" in ops
