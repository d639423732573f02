"""Profiles measured with real DeepSparse here: complete, ordered, schema-valid and additive, on any CPU.
(How well a profile predicts a really pruned model is timing: benchmarks/latency_model.py measures it.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spdy_recipes.errors import SpdyError
from spdy_recipes.models import load_model, prunable_layers
from spdy_recipes.models.export import module_of_node
from spdy_recipes.profile import load_profile
from spdy_recipes.profile.measure import mixed_design

from .conftest import CNN_SHAPE, CNN_SPEC, TEST_GRID


@pytest.mark.parametrize("which", ["measured_cnn_profile", "measured_bert_profile", "measured_mixed_cnn_profile"])
def test_profile_is_complete_ordered_and_valid(which, request):
    profile, path = request.getfixturevalue(which)
    reloaded = load_profile(path)  # schema validation
    spec = reloaded.model["spec"]
    shape = CNN_SHAPE if spec == CNN_SPEC else (64,)
    model_layers = [layer.name for layer in prunable_layers(load_model(spec, 8, shape).module)]
    assert reloaded.layer_names == model_layers  # every layer, in model order
    assert reloaded.grid == [float(s) for s in TEST_GRID.split(",")]
    assert all(layer.times_ms[0] > 0 for layer in reloaded.layers)  # (loading checks lengths and signs)
    hw = reloaded.hardware
    assert hw["cpu_model"] and hw["isa"] and hw["cores"] >= 1
    assert reloaded.engine["name"] == "deepsparse" and reloaded.engine["version"].startswith("1.8")
    assert reloaded.model["graph_hash"].startswith("sha256:") and reloaded.batch_size == 8


@pytest.mark.parametrize("which", ["measured_cnn_profile", "measured_bert_profile", "measured_mixed_cnn_profile"])
def test_layer_times_plus_fixed_add_up_to_each_run_total(which, request):
    """Every analysed run is split completely: its layers plus the tail make up its total."""
    profile, _ = request.getfixturevalue(which)
    levels = len(profile.grid)
    for run, totals in enumerate(profile.total_samples_ms):
        for repeat, total in enumerate(totals):
            if profile.design == "mixed":  # run k of the repeat had layer i at level (k + shift_i) mod levels
                at = mixed_design(profile.engine["design_shifts"][repeat], levels)[run]
            else:
                at = [run] * len(profile.layers)
            parts = profile.other_samples_ms[run][repeat] + sum(
                layer.samples_ms[level][repeat] for layer, level in zip(profile.layers, at, strict=True))
            assert parts == pytest.approx(total, rel=0.05)


@pytest.mark.parametrize("which", ["measured_cnn_profile", "measured_bert_profile"])
def test_the_profile_records_which_layers_each_engine_operation_fused(which, request):
    """``fused_groups`` agrees with the kernels: a layer sits in a group of n at a level exactly when its kernel
    there is a fused one of n layers, and the blocks partition the layers in model order."""
    profile, path = request.getfixturevalue(which)
    reloaded = load_profile(path)
    assert len(reloaded.fused_groups) == len(reloaded.grid)
    for level, groups in enumerate(reloaded.fused_groups):
        size = {name: len(group) for group in groups for name in group}
        for layer in reloaded.layers:
            kernel = layer.kernels[level]
            fused = int(kernel.rsplit(" x", 1)[1]) if " x" in kernel else 1
            assert size.get(layer.name, 1) == fused, (layer.name, level, kernel)
    assert [name for block in reloaded.blocks() for name in block] == reloaded.layer_names


def test_a_mixed_design_profile_measures_every_layer_at_every_level_next_to_other_levels(measured_mixed_cnn_profile):
    """The mixed design: every layer once per level and repeat, in runs whose layers sit at different levels,
    and a dense reference per repeat that the speedups are taken against."""
    profile, path = measured_mixed_cnn_profile
    reloaded = load_profile(path)
    assert reloaded.design == "mixed" and "real-zero mixed-sparsity" in reloaded.engine["method"]
    assert len(reloaded.dense_total_samples_ms) == reloaded.repeats == 2
    dense = reloaded.dense_total_samples_ms
    analysed = reloaded.without_calibration()
    assert analysed.dense_ms == pytest.approx(reloaded.call_overhead_ms + (dense[0] + dense[1]) / 2)
    assert reloaded.calibrated and reloaded.dense_ms == reloaded.engine_points[0].dense_ms  # real engine calls
    for layer in reloaded.layers:
        assert all(len(samples) == 2 for samples in layer.samples_ms)
    data = json.loads(Path(path).read_text())
    assert "dense_total_samples_ms" in data and len(data["engine"]["design_shifts"]) == 2
    assert all(len(shifts) == len(reloaded.layers) for shifts in data["engine"]["design_shifts"])


def test_the_mixed_design_puts_every_layer_at_every_level_once_and_mixes_them():
    design = mixed_design([0, 3, 5, 3, 1, 0, 2], 6)
    assert len(design) == 6 and design[0] == [0, 3, 5, 3, 1, 0, 2] and design[1] == [1, 4, 0, 4, 2, 1, 3]
    for layer in range(7):
        assert sorted(run[layer] for run in design) == list(range(6))
    assert all(len(set(run)) > 1 for run in design)


def test_module_of_node_rebuilds_module_paths():
    assert module_of_node("/features/features.1/conv/conv.0/conv.0.0/Conv") == "features.1.conv.0.0"
    assert module_of_node("/layer1/layer1.0/conv1/Conv") == "layer1.0.conv1"
    assert module_of_node("/model.2/m/m.0/cv1/conv/Conv") == "model.2.m.0.cv1.conv"
    query = "bert.encoder.layer.0.attention.self.query"
    assert module_of_node("/bert/encoder/layer.0/attention/self/query/MatMul") == query


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(format="other"), "not a spdy-recipes/profile"),
        (lambda d: d["layers"][0].update(samples_ms=[[1.0]]), "grid levels"),
        (lambda d: d["layers"][0]["samples_ms"][1].append(1.0), "repeat"),
        (lambda d: d["layers"][1].update(name=d["layers"][0]["name"]), "listed twice"),
        (lambda d: d.update(grid=[0.0, 0.9, 0.5] + d["grid"][3:]), "increase strictly"),
        (lambda d: d["layers"][0]["samples_ms"][0].__setitem__(0, -1.0), "negative"),
        (lambda d: d["model"].pop("graph_hash"), "graph_hash"),
        (lambda d: d.update(fused_groups=[[["no.such.layer"]]] * len(d["grid"])), "fused_groups"),
    ],
)
def test_malformed_profiles_are_rejected(cnn_profile, tmp_path, mutate, message):
    _, path = cnn_profile
    data = json.loads(Path(path).read_text())
    mutate(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SpdyError, match=message):
        load_profile(bad)


def test_not_json_is_rejected(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpdyError, match="not JSON"):
        load_profile(bad)
