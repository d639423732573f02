"""INT8 and block-4: SparseML's block masks in our one-shot pruning, the INT8 export's integer operations and
their layers, and an INT8 profile measured in DeepSparse with real block-4 zeros (portable: nothing here asserts
a speed, which needs AVX-512 VNNI for native INT8 sparse kernels)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spdy_recipes.deployment import Deployment
from spdy_recipes.errors import SpdyError
from spdy_recipes.models import load_model
from spdy_recipes.models.export import export_onnx, export_pruned
from spdy_recipes.models.oneshot import magnitude_mask, weight_sparsity
from spdy_recipes.models.quantize import INTEGER_OPS, check_integer
from spdy_recipes.profile import load_profile
from spdy_recipes.profile.correction import fit_correction
from spdy_recipes.profile.layer_map import LayerMap
from spdy_recipes.profile.schema import profile_from_dict

from .cli_helpers import assert_clean_failure, run_cli
from .recorded import CNN_SPEC

SHAPE = (3, 64, 64)


def _blocks(mask: torch.Tensor) -> torch.Tensor:
    """A conv mask [O, I, kh, kw] as rows of 4 consecutive input channels at one output channel and position."""
    return mask.permute(0, 2, 3, 1).reshape(-1, 4)


def test_block4_masks_keep_or_drop_four_consecutive_input_channels_together():
    torch.manual_seed(0)
    weight = torch.randn(32, 16, 3, 3)
    mask = magnitude_mask(weight, 0.75, "block4")
    rows = _blocks(mask)
    assert bool(((rows.sum(dim=1) == 0) | (rows.sum(dim=1) == 4)).all())  # whole blocks only
    assert float((~mask).float().mean()) == pytest.approx(0.75)
    kept = _blocks(weight.abs())[rows.all(dim=1)].mean(dim=1).min()
    dropped = _blocks(weight.abs())[~rows.any(dim=1)].mean(dim=1).max()
    assert kept >= dropped  # scored by the block's mean magnitude
    unstructured = magnitude_mask(weight, 0.75)
    assert not bool(((_blocks(unstructured).sum(dim=1) % 4) == 0).all())  # the default mask is not blocked
    linear = magnitude_mask(torch.randn(8, 12), 0.5, "block4")
    assert bool(((linear.reshape(8, 3, 4).sum(dim=2) % 4) == 0).all())  # a Linear's blocks run along its inputs
    with pytest.raises(SpdyError, match="mask type must be one of unstructured, block4"):
        magnitude_mask(weight, 0.5, "2:4")


@pytest.fixture(scope="module")
def cnn():
    return load_model(CNN_SPEC, batch_size=4, input_shape=SHAPE)


def test_the_int8_export_computes_every_prunable_layer_in_integers(cnn, tmp_path):
    import onnx

    path = export_onnx(cnn, tmp_path / "int8.onnx", Deployment("int8"))
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert not {"Conv", "Gemm", "MatMul"} & set(ops)
    assert sum(op in INTEGER_OPS for op in ops) == 5  # SmallCNN: four convs and a classifier
    layer_map = LayerMap.build(cnn, path)  # the integer ops map back to the torch weights
    layers = {layer.name: layer.module for layer in layer_map.layers}
    assert len(layers) == 5 and check_integer(path, layer_map.output_module, layers) == []
    fp32 = export_onnx(cnn, tmp_path / "fp32.onnx")
    with pytest.raises(SpdyError, match="holds no integer Conv or MatMul"):
        check_integer(fp32, LayerMap.build(cnn, fp32).output_module, layers)


def test_a_pruned_int8_export_holds_block4_zeros_in_its_integer_weights(cnn, tmp_path):
    import onnx
    from onnx import numpy_helper

    names = [name for name, p in cnn.module.named_parameters() if p.dim() == 4 and p.shape[1] % 4 == 0]
    path = export_pruned(cnn, dict.fromkeys(names, 0.5), tmp_path / "pruned.onnx", Deployment("int8"))
    assert weight_sparsity(cnn.module, names) == dict.fromkeys(names, 0.0)  # the bundle is left dense
    graph = onnx.load(str(path)).graph
    quantized = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    convs = [(quantized[node.input[3]], quantized[node.input[5]]) for node in graph.node
             if node.op_type == "QLinearConv" and quantized[node.input[3]].shape[1] % 4 == 0]
    assert len(convs) == len(names)
    for weight, zero_point in convs:  # a pruned weight is the zero point (uint8 weights here: 128)
        blocks = np.moveaxis(weight, 1, -1).reshape(-1, 4) == zero_point
        pruned = blocks.all(axis=1).mean()
        assert 0.5 <= pruned <= 0.51  # half the blocks, whole (and a few tiny blocks that round to zero)
        assert blocks.mean() < pruned + 0.01  # the zeros sit in whole blocks, not spread


@pytest.fixture(scope="module")
def int8_profile(tmp_path_factory):
    """(Profile, path) of SmallCNN in INT8 with block-4 zeros, batch 4, 64x64, measured here by the CLI."""
    out = tmp_path_factory.mktemp("int8") / "int8.json"
    code, _, stderr = run_cli(["profile", "--model", CNN_SPEC, "--input-shape", "3,64,64", "--batch-size", 4,
                               "--hw", "local", "--grid", "0,0.5,0.9", "--repeats", 1, "--iterations", 2,
                               "--calibration-plans", 3, "--precision", "int8", "-o", out])
    assert code == 0, stderr
    return load_profile(out), out


def test_an_int8_profile_is_measured_on_real_block4_exports_and_records_both_dense_times(int8_profile):
    profile, path = int8_profile
    assert profile.deployment == Deployment("int8", "block4")
    assert profile.design == "mixed" and profile.calibrated
    assert profile.model["left_fp32"] == []
    engine = profile.engine
    speedup, low, high = engine["int8_speedup_over_fp32"]
    assert engine["dense_fp32_ms"] > 0 and engine["dense_int8_ms"] > 0 and low <= speedup <= high
    # an fp32 command cannot take it by mistake: the deployment is checked like the graph and the batch
    assert_clean_failure(["generate", "--model", CNN_SPEC, "--input-shape", "3,64,64", "--batch-size", 4, "--hw",
                          path, "--speedup", 1.1, "-o", path.parent / "r.yaml"],
                         "was measured in int8, block4; this command needs one measured in fp32, unstructured",
                         path.parent / "r.yaml")


def test_an_int8_profile_predicts_over_dense_fp32_by_int8s_own_measured_gain(int8_profile):
    profile, _ = int8_profile
    over_fp32, over_int8 = profile.with_baseline("fp32"), profile.with_baseline("int8")
    ratio = profile.engine["int8_speedup_over_fp32"][0]
    assert over_fp32.baseline_ratio == pytest.approx(ratio) and over_int8.baseline_ratio == 1.0
    levels = {name: len(profile.grid) - 1 for name in profile.layer_names}
    assert over_fp32.predicted_speedup(levels) == pytest.approx(ratio * over_int8.predicted_speedup(levels))
    assert over_fp32.predicted_ms(levels) == pytest.approx(over_int8.predicted_ms(levels))  # the same INT8 plan
    assert over_fp32.content_hash() == profile.content_hash()  # a view: nothing of it is saved
    # but a search over fp32 has another budget than one over INT8: their checkpoints must not be shared
    from types import SimpleNamespace

    from spdy_recipes.solve.objective import ProfileObjective, search_key
    from spdy_recipes.solve.search import SearchSettings

    setup = SimpleNamespace(database=SimpleNamespace(key="db"), selected=profile.layer_names, pool=None,
                            scorer=SimpleNamespace(kind="kl"))
    keys = {search_key(ProfileObjective(setup, view, 2.0, 0.9), SearchSettings()) for view in (over_fp32, over_int8)}
    assert len(keys) == 2
    with pytest.raises(SpdyError, match="need its calibration"):
        profile.without_calibration().with_baseline("fp32")
    with pytest.raises(SpdyError, match="--baseline int8 needs a profile measured with --precision int8"):
        load_profile("recipes/hardware/xeon-avx512-2core/torchvision-mobilenet_v2-bs16-c2.json").with_baseline("int8")


def _reach_over_fp32(int8_profile, purpose):
    """(the INT8 profile seen over dense fp32, its best reachable speedup); skips, naming the CPU, where INT8 gives
    no plan worth ``purpose`` (INT8 sparse kernels are native only with VNNI)."""
    from spdy_recipes.solve.settings import solve

    stored, _ = int8_profile
    profile = stored.with_baseline("fp32")
    best = solve(profile, 1.0001).max_speedup
    if best <= 1.05:
        pytest.skip(f"INT8 reaches only {best:.2f}x over fp32 on this CPU ({stored.hardware.get('cpu_model')}, "
                    f"VNNI {stored.hardware.get('vnni')}): no INT8 plan to {purpose}")
    return profile, best


def _int8_recipe(int8_profile, epochs=8.0, method="gmp"):
    from spdy_recipes.emit import RecipeSettings
    from spdy_recipes.emit.write import render_checked_recipe
    from spdy_recipes.solve.settings import SolveSettings, solve

    profile, best = _reach_over_fp32(int8_profile, "train")
    path = int8_profile[1]
    plan = solve(profile, 1 + 0.8 * (best - 1))
    settings = RecipeSettings(method=method, epochs=epochs, pruning_start_fraction=0.125)
    return plan, render_checked_recipe(plan, profile, path, settings, SolveSettings(), set(profile.layer_names))


def test_an_int8_recipe_prunes_in_block4_then_quantizes_and_says_over_which_dense_model(int8_profile):
    from spdy_recipes.emit.validate import recipe_targets

    plan, text = _int8_recipe(int8_profile)
    targets, manager = recipe_targets(text)
    assert targets == pytest.approx(plan.pruned)
    pruning = [m for m in manager.modifiers if type(m).__name__ == "GMPruningModifier"]
    assert pruning and all(m.mask_type == "block4" for m in pruning)
    [quantization] = [m for m in manager.modifiers if "Quantization" in type(m).__name__]
    assert "legacy" in type(quantization).__module__  # the class that works with torch 2.14
    assert quantization.start_epoch >= max(m.end_epoch for m in pruning)  # QAT after pruning
    assert quantization.start_epoch < quantization.disable_quantization_observer_epoch <= 8.0
    assert f"target {plan.target_speedup:.3f}x over dense fp32" in text and "x over dense INT8" in text
    assert '  precision: "int8"' in text and '  mask_type: "block4"' in text and '  baseline: "fp32"' in text
    with pytest.raises(SpdyError, match="after quantization-aware training would start"):
        _int8_recipe(int8_profile, epochs=3.0)


def test_an_int8_recipe_trains_in_sparseml_to_its_block4_targets_with_quantized_modules(int8_profile, tmp_path):
    from sparseml.pytorch.optim import ScheduledModifierManager
    from sparseml.pytorch.utils import LoggerManager

    plan, text = _int8_recipe(int8_profile)
    path = tmp_path / "int8.yaml"
    path.write_text(text)
    bundle = load_model(CNN_SPEC, batch_size=8, input_shape=SHAPE)
    module = bundle.module.train()
    torch.manual_seed(0)
    manager = ScheduledModifierManager.from_yaml(str(path))
    optimizer = manager.modify(module, torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9),
                               steps_per_epoch=4, loggers=LoggerManager(log_python=False))
    for _ in range(int(manager.max_epochs) * 4):
        loss = torch.nn.functional.cross_entropy(module(torch.randn(8, *SHAPE)), torch.randint(0, 10, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    manager.finalize(module)
    assert any(type(m).__name__ == "FakeQuantize" for m in module.modules())  # QAT ran
    weights = {name.replace(".module.", "."): p for name, p in module.named_parameters()}  # QAT wraps each layer
    for name, target in plan.pruned.items():
        zeros = weights[name] == 0
        assert float(zeros.float().mean()) == pytest.approx(target, abs=0.005), name
        if weights[name].shape[1] % 4 == 0:  # whole blocks of 4 input channels, through QAT's conv-BN fusion
            assert bool(((_blocks(zeros).sum(dim=1) % 4) == 0).all()), name
    # verify --trained rebuilds the recipe's quantization, loads the trained scales and times the INT8 export
    torch.save(module.state_dict(), tmp_path / "model.pt")
    verify = ["verify", path, "--model", CNN_SPEC, "--input-shape", "3,64,64", "--batch-size", 4, "--rounds", 3,
              "--trained"]
    code, stdout, stderr = run_cli(verify + [tmp_path / "model.pt"])
    assert f"all {len(plan.pruned)} recipe layers at their target sparsity" in stdout, stdout + stderr
    verdict = next(line for line in (stdout + stderr).splitlines() if "measured" in line and "target" in line)
    assert (code == 0) == verdict.rstrip().endswith("OK"), verdict  # it measured, and acted on what it printed
    torch.save(load_model(CNN_SPEC, batch_size=8, input_shape=SHAPE).module.state_dict(), tmp_path / "fp32.pt")
    assert_clean_failure(verify + [tmp_path / "fp32.pt"], "hold no quantization")


@pytest.mark.parametrize("deployment", [["--precision", "int8"], ["--mask-type", "block4"]])
def test_int8_or_block4_with_imposed_sparsity_is_refused_before_anything_is_measured(deployment, tmp_path):
    assert_clean_failure(["profile", "--model", CNN_SPEC, "--hw", "local", *deployment, "--design", "uniform",
                          "-o", tmp_path / "p.json"], "need --design mixed", tmp_path / "p.json")


def test_an_fp32_block4_profile_times_real_block4_zeros_and_its_recipe_says_nothing_of_int8(tmp_path):
    from spdy_recipes.emit import RecipeSettings
    from spdy_recipes.emit.write import render_checked_recipe
    from spdy_recipes.solve.settings import SolveSettings, solve

    out = tmp_path / "block4.json"
    code, _, stderr = run_cli(["profile", "--model", CNN_SPEC, "--input-shape", "3,64,64", "--batch-size", 4,
                               "--hw", "local", "--grid", "0,0.5,0.9", "--repeats", 1, "--iterations", 2,
                               "--calibration-plans", 0, "--mask-type", "block4", "-o", out])
    assert code == 0, stderr
    profile = load_profile(out)
    assert profile.deployment == Deployment("fp32", "block4") and profile.design == "mixed"
    assert "int8_speedup_over_fp32" not in profile.engine
    best = solve(profile, 1.0001).max_speedup
    if best <= 1.02:
        pytest.skip(f"block-4 zeros gain nothing on this CPU at this size ({best:.3f}x): no plan to write")
    plan = solve(profile, 0.99 * best)
    if not plan.pruned:
        pytest.skip(f"the dense model already predicts the fastest reachable speed here ({best:.3f}x): "
                    "nothing to prune")
    text = render_checked_recipe(plan, profile, out, RecipeSettings(method="gmp", epochs=4.0), SolveSettings(),
                                 set(profile.layer_names))
    assert "mask_type: block4" in text and "QuantizationModifier" not in text and "INT8" not in text
    assert '  mask_type: "block4"' in text and '  precision: "fp32"' in text


def test_a_fit_whose_intercept_would_be_negative_is_saved_and_loads_again(cnn_profile):
    """The intercept is a time: a fit driven below 0 (plans faster than the analysed layers allow) is held at 0,
    so the profile it is saved in loads again (it did not: ``'intercept_ms' holds -0.08394``)."""
    from spdy_recipes.profile.correction import EnginePoint

    profile, _ = cnn_profile
    table = profile.analysed_table()
    dense = tuple([0] * len(profile.layers))
    top = tuple([len(profile.grid) - 1] * len(profile.layers))
    fast = 3 * table.uncorrected_speedup(top)  # far beyond what the table's layers can give
    points = [EnginePoint(levels=levels, speedup=s, low=s, high=s, dense_ms=10.0, pruned_ms=10.0 / s, kind="uniform")
              for levels, s in ((top, fast), (dense, 1.0))]
    from spdy_recipes.profile.correction import BLOCK_STRENGTHS, _solve

    assert _solve(table, points, table.dense_ms(), BLOCK_STRENGTHS[-1])[0] < 0  # the raw fit is below 0
    correction = fit_correction(table, points, 10.0)
    assert correction.intercept_ms >= 0
    data = json.loads(json.dumps(profile.with_engine_points(points, 10.0).to_dict()))
    assert profile_from_dict(data).correction.intercept_ms >= 0


def test_the_database_of_a_block4_deployment_prunes_every_level_in_whole_blocks(tmp_path):
    """SPDY's search scores plans stitched from the database: for a block-4 deployment its levels must hold the
    block-4 zeros the engine was timed with, re-fitted (OBS) on the kept weights, and cached apart."""
    from spdy_recipes.calibration import load_calibration
    from spdy_recipes.models import prunable_layers
    from spdy_recipes.sensitivity.database import obtain_database

    bundle = load_model(CNN_SPEC, batch_size=4, input_shape=SHAPE)
    calibration, _ = load_calibration("builtin:images", bundle, 8, 0, 0)
    layers = [layer for layer in prunable_layers(bundle.module) if layer.name == "body.2.weight"]
    grid = [0.0, 0.5, 0.75]
    blocked, path, _ = obtain_database(bundle, layers, grid, calibration, "obs", mask_type="block4")
    plain, other, _ = obtain_database(bundle, layers, grid, calibration, "obs")
    assert path != other and blocked.mask_type == "block4" and plain.mask_type == "unstructured"
    for level, sparsity in enumerate(grid[1:], start=1):
        zeros = blocked.weight("body.2.weight", level) == 0
        assert float(zeros.float().mean()) == pytest.approx(sparsity, abs=0.01)
        assert bool(((_blocks(zeros).sum(dim=1) % 4) == 0).all())
        assert not torch.equal(zeros, plain.weight("body.2.weight", level) == 0)


def test_named_hardware_finds_each_deployments_profile_beside_the_others(int8_profile, tmp_path):
    """A folder without a hardware.yaml core count: the core count is read from the file names of the wanted
    deployment only (an INT8 file's ``-c2-int8-block4`` suffix once crashed the fp32 lookup)."""
    import shutil

    from spdy_recipes.profile.store import named_profile_path, profile_filename

    profile, path = int8_profile
    bundle = load_model(CNN_SPEC, batch_size=4, input_shape=SHAPE)
    folder = tmp_path / "box"
    folder.mkdir()
    int8 = Deployment("int8")
    shutil.copy(path, folder / profile_filename(bundle, profile.cores, int8))
    assert named_profile_path("box", bundle, None, tmp_path, int8) == (
        folder / profile_filename(bundle, profile.cores, int8), profile.cores)
    with pytest.raises(SpdyError, match="has no profile for"):
        named_profile_path("box", bundle, None, tmp_path)  # fp32: none there, one clear error
    shutil.copy(path, folder / profile_filename(bundle, profile.cores))  # (only its name matters here)
    assert named_profile_path("box", bundle, None, tmp_path)[0].name.endswith(f"-c{profile.cores}.json")


def test_an_int8_recipe_is_verified_and_reported_over_the_dense_model_it_names(int8_profile, tmp_path):
    """``verify`` and ``report`` read the recipe's deployment and baseline: the one-shot check exports INT8 with
    block-4 zeros and times it against dense fp32, and the page predicts what the recipe predicted (over fp32,
    not over the profile's own dense INT8)."""
    from spdy_recipes.report.view import build_view

    profile, path = int8_profile
    stored, best = _reach_over_fp32(int8_profile, "verify")
    recipe = tmp_path / "int8.yaml"
    code, _, stderr = run_cli(["generate", "--model", CNN_SPEC, "--input-shape", "3,64,64", "--batch-size", 4,
                               "--hw", path, "--precision", "int8", "--speedup", round(1 + 0.8 * (best - 1), 3),
                               "--epochs", 8, "-o", recipe])
    assert code == 0, stderr
    view = build_view(recipe, path)
    assert view.predicted_speedup == pytest.approx(float(view.metadata["predicted_speedup"]), rel=1e-3)
    assert view.dense_ms == pytest.approx(stored.dense_ms)  # the fp32 baseline, not dense INT8
    assert view.table_dense_ms == pytest.approx(profile.dense_ms)  # the layer rows are the INT8 model's
    assert "int8, block4: speedups over dense fp32" in view.deployment_note
    code, stdout, stderr = run_cli(["verify", recipe, "--model", CNN_SPEC, "--input-shape", "3,64,64",
                                    "--batch-size", 4, "--rounds", 3])
    verdict = next(line for line in (stdout + stderr).splitlines() if "measured" in line and "target" in line)
    assert (code == 0) == verdict.rstrip().endswith("OK"), verdict  # it measured, and acted on what it printed


def test_a_profile_with_an_unknown_precision_is_one_error_naming_the_profile_and_inspect_names_it(int8_profile,
                                                                                                 tmp_path):
    profile, path = int8_profile
    code, stdout, _ = run_cli(["inspect", path])
    assert code == 0 and "timed in int8, block4" in stdout and "dense INT8 runs" in stdout
    data = json.loads(path.read_text())
    data["model"]["precision"] = "int4"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert_clean_failure(["solve", "--profile", bad, "--speedup", 2], "'model.precision' must be one of fp32, int8")


def test_compare_of_an_int8_profile_scores_every_row_quantized_against_dense_fp32(int8_profile):
    """compare on an INT8 profile prunes in block-4 and scores each row as its INT8 export computes (fake
    quantization): even the dense row is off the fp32 reference by quantization's own error."""
    profile, best = _reach_over_fp32(int8_profile, "compare")
    code, stdout, stderr = run_cli(["compare", "--model", CNN_SPEC, "--input-shape", "3,64,64", "--batch-size", 4,
                                    "--hw", int8_profile[1], "--precision", "int8",
                                    "--speedup", round(1 + 0.6 * (best - 1), 3), "--calib", "builtin:images",
                                    "--calib-samples", 16, "--holdout", 8, "--search-budget", 4, "--rounds", 0])
    assert code == 0, stderr
    assert "scored quantized to INT8 against dense fp32" in stdout
    dense = next(line for line in stdout.splitlines() if line.startswith("dense ")).split()
    calibration_loss, heldout_loss = float(dense[-3]), float(dense[-2])  # (then the held-out accuracy)
    assert calibration_loss > 0 and heldout_loss > 0, dense  # KL of dense INT8 to dense fp32 > 0
