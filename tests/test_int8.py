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


def test_an_int8_profile_is_measured_on_real_block4_exports_and_records_both_dense_times(tmp_path):
    out = tmp_path / "int8.json"
    code, stdout, stderr = run_cli(["profile", "--model", CNN_SPEC, "--input-shape", "3,64,64", "--batch-size", 4,
                                    "--hw", "local", "--grid", "0,0.5,0.9", "--repeats", 1, "--iterations", 2,
                                    "--calibration-plans", 3, "--precision", "int8", "-o", out])
    assert code == 0, stderr
    profile = load_profile(out)
    assert profile.deployment == Deployment("int8", "block4")
    assert profile.design == "mixed" and profile.calibrated
    assert profile.model["left_fp32"] == []
    engine = profile.engine
    speedup, low, high = engine["int8_speedup_over_fp32"]
    assert engine["dense_fp32_ms"] > 0 and engine["dense_int8_ms"] > 0 and low <= speedup <= high
    # an fp32 command cannot take it by mistake: the deployment is checked like the graph and the batch
    assert_clean_failure(["solve", "--profile", out, "--speedup", 1.1],
                         "was measured in int8, block4; this command needs one measured in fp32, unstructured")


def test_int8_with_imposed_sparsity_is_refused_before_anything_is_measured(tmp_path):
    assert_clean_failure(["profile", "--model", CNN_SPEC, "--hw", "local", "--precision", "int8", "--design",
                          "uniform", "-o", tmp_path / "p.json"], "--precision int8 needs --design mixed",
                         tmp_path / "p.json")


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
    correction = fit_correction(table, points, 10.0)
    assert correction.intercept_ms >= 0
    data = json.loads(json.dumps(profile.with_engine_points(points, 10.0).to_dict()))
    assert profile_from_dict(data).correction.intercept_ms >= 0
