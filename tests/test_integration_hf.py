"""spdy-train-hf: real MiniLM weights fine-tuned by the transformers Trainer with real SparseML recipes
(from a real DeepSparse profile) reach every layer's solved sparsity, in one process and under torchrun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from integrations.huggingface.data import make_question_answering, make_text_classification
from integrations.huggingface.tasks import encode, load_tokenizer
from integrations.huggingface.train import MINILM, main

from .integration_helpers import torchrun, torchrun_failure, write_test_recipe

SEQ = 32
SAMPLES = 64  # 8 steps per epoch at batch 8: M-FAC's 0.5-epoch mask updates see num_grads=4 gradients
SPEC = f"hf:{MINILM}:BertForSequenceClassification"
# M-FAC with 2000-wide Fisher blocks would need ~26 GB for these layers on CPU: pin the small ones
METHOD_SETTINGS = {"gmp": {}, "acdc": {},
                   "mfac": {"num_grads": 4, "pruning_start_fraction": 0.25, "fisher_block_size": 50}}


@pytest.fixture(scope="module")
def work(module_dir) -> Path:
    folder = module_dir
    make_text_classification(folder / "classification", samples=SAMPLES)
    make_question_answering(folder / "qa", samples=SAMPLES)
    return folder


# The first feed-forward layer of each block (590 k weights) stays dense in MiniLM's recipes: at every mask update
# SparseML breaks ties among equal magnitudes (the zeros of the last mask) with Python's random.shuffle, seconds per
# update for layers that size (measured on ResNet18). (Keeping the second one dense as well leaves no speedup on AVX2.)
FFN = (r"layer\.\d+\.intermediate\.dense\.",)


def _recipe(work: Path, method: str, recording: str = "minilm-classification") -> tuple[Path, dict]:
    """A recipe from the recorded profile of the task model (tests/recorded.py)."""
    path = work / f"{method}-{recording}.yaml"
    exclude = FFN if recording.startswith("minilm") else ()
    targets = write_test_recipe(recording, method, path, epochs=4, exclude=exclude, init_lr=5e-5,
                                **METHOD_SETTINGS[method])
    return path, targets


def _args(work: Path, recipe: Path, out: Path, task: str = "text-classification", checkpoints: int = 0,
          recipe_args: str = "{}") -> list[str]:
    data = work / ("classification" if task == "text-classification" else "qa")
    return ["--task", task, "--recipe", str(recipe), "--recipe-args", recipe_args,
            "--train-file", str(data / "train.jsonl"), "--eval-file", str(data / "eval.jsonl"), "-o", str(out),
            "--batch-size", "8", "--max-seq-length", str(SEQ), "--checkpoints", str(checkpoints)]


def _train(args: list[str]) -> dict:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr + repr(result.exception)
    return json.loads((Path(args[args.index("-o") + 1]) / "sparsity_report.json").read_text())


def _assert_targets(report: dict, targets: dict, out: Path) -> None:
    """Every layer at its target, in the report and in the zeros of the saved model.pt."""
    assert report["missed"] == []
    state = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    for name, target in targets.items():
        assert report["layers"][name]["reached"] == pytest.approx(target, abs=0.005), name
        assert float((state[name] == 0).float().mean()) == pytest.approx(target, abs=0.005), name


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_example_data_is_seeded_and_answers_are_spans(tmp_path):
    for make in (make_text_classification, make_question_answering):
        first, again = make(tmp_path / make.__name__, 16, seed=3), make(tmp_path / "again", 16, seed=3)
        for name in ("train.jsonl", "eval.jsonl"):
            assert (first / name).read_bytes() == (again / name).read_bytes()
    assert {row["label"] for row in _rows(tmp_path / "make_text_classification" / "train.jsonl")} == {0, 1}
    rows = _rows(tmp_path / "make_question_answering" / "train.jsonl")
    assert len(rows) == 16
    for row in rows:
        (text,), (start,) = row["answers"]["text"], row["answers"]["answer_start"]
        assert row["context"][start:start + len(text)] == text and "____" in row["question"]


def test_question_answering_positions_point_at_the_answer(work):
    rows = _rows(work / "qa" / "train.jsonl")
    tokenizer = load_tokenizer(str(MINILM))
    features = encode(rows, "question-answering", tokenizer, 64)
    found = 0
    for row, feature in zip(rows, features, strict=True):
        start, end = int(feature["start_positions"]), int(feature["end_positions"])
        if start:  # 0: the answer was truncated away
            found += 1
            span = tokenizer.decode(feature["input_ids"][start:end + 1])
            assert span == row["answers"]["text"][0].lower()
    assert found > len(rows) // 2


@pytest.fixture(scope="module")
def gmp_run(work) -> tuple[dict, dict, Path]:
    recipe, targets = _recipe(work, "gmp")
    out = work / "run-gmp"
    return _train(_args(work, recipe, out)), targets, out


@pytest.mark.parametrize("method", ["gmp", "acdc", "mfac"])
def test_text_classification_reaches_targets(method, work, gmp_run, tmp_path):
    if method == "gmp":
        report, targets, out = gmp_run
    else:
        recipe, targets = _recipe(work, method)
        out = tmp_path / f"run-{method}"
        report = _train(_args(work, recipe, out))
    if method == "mfac":  # mask updates every 0.5 epochs must see num_grads optimizer steps
        assert report["steps_per_epoch"] * 0.5 >= METHOD_SETTINGS["mfac"]["num_grads"]
    _assert_targets(report, targets, out)
    assert len(report["losses"]) == 4 and all(torch.isfinite(torch.tensor(report["losses"])))
    assert report["steps"] == 4 * SAMPLES // 8 and report["processes"] == 1
    assert 0 <= report["eval_accuracy"] <= 1
    assert {"model.onnx", "final_recipe.yaml", "model"} <= {p.name for p in out.iterdir()}


def test_question_answering_reaches_targets(work, tmp_path):
    recipe, targets = _recipe(work, "gmp", "minilm-qa")  # its own recipe: the QA model has no pooler
    out = tmp_path / "run-qa"
    report = _train(_args(work, recipe, out, "question-answering"))
    _assert_targets(report, targets, out)
    assert all(torch.isfinite(torch.tensor(report["losses"]))) and 0 <= report["eval_exact_match"] <= 1
    assert (out / "model" / "config.json").is_file() and (out / "model.onnx").is_file()


def test_torchrun_matches_one_process(work, gmp_run, tmp_path):
    single, targets, _ = gmp_run
    recipe, _ = _recipe(work, "gmp")
    out = tmp_path / "run-ddp"
    result = torchrun("integrations.huggingface.train", _args(work, recipe, out))
    assert result.returncode == 0, torchrun_failure(result)
    report = json.loads((out / "sparsity_report.json").read_text())
    assert report["processes"] == 2 and report["replicas_agree"] is True
    assert report["steps_per_epoch"] == SAMPLES // 8 // 2  # each process iterates its shard
    _assert_targets(report, targets, out)
    for name in targets:
        assert report["layers"][name]["reached"] == pytest.approx(single["layers"][name]["reached"], abs=1e-6)
    assert sum(line.startswith("epoch ") for line in result.stderr.splitlines()) == 4  # main process only


def test_recipe_for_another_model_fails_before_training(work):
    recipe, targets = _recipe(work, "gmp", "cnn")
    out = work / "run-wrong"
    result = CliRunner().invoke(main, _args(work, recipe, out))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("[", "warning:"))]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert any(name in lines[0] for name in targets) and SPEC in lines[0]
    assert not (out / "model.pt").exists() and not (out / "checkpoints").exists()


def test_recipe_args_set_the_training_length(work, gmp_run, tmp_path):
    recipe, targets = _recipe(work, "gmp")
    out = tmp_path / "run-2-epochs"
    report = _train(_args(work, recipe, out, checkpoints=1, recipe_args='{"num_epochs": 2}'))
    assert report["epochs"] == 2 and len(report["losses"]) == 2
    assert report["steps"] == 2 * SAMPLES // 8 == gmp_run[0]["steps"] // 2
    state = json.loads((out / "checkpoints" / f"checkpoint-{report['steps']}" / "trainer_state.json").read_text())
    assert state["global_step"] == report["steps"] and state["epoch"] == pytest.approx(2.0)
    _assert_targets(report, targets, out)


def test_an_int8_recipe_trains_block4_with_qat_and_exports_integer_ops(work, tmp_path):
    """An INT8 recipe (block-4 pruning, then SparseML's quantization-aware training) through the integration:
    every layer at its target (the run's own check) and model.onnx with integer matrix products."""
    import onnx

    from .integration_helpers import write_int8_test_recipe

    recipe = work / "int8.yaml"
    targets = write_int8_test_recipe("minilm-classification", recipe, 4, FFN, init_lr=5e-5)
    out = tmp_path / "run-int8"
    report = _train(_args(work, recipe, out))
    assert report["missed"] == [] and set(report["layers"]) == set(targets)
    ops = {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}
    assert ops & {"QLinearMatMul", "MatMulInteger"}, sorted(ops)
