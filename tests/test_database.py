"""The reconstruction database: re-fitting beats the magnitude mask alone, and the disk cache keys."""

from __future__ import annotations

import pytest
import torch

from spdy_recipes.calibration import load_calibration
from spdy_recipes.errors import SpdyError
from spdy_recipes.models import load_model, prunable_layers
from spdy_recipes.models.layers import parameters_by_name
from spdy_recipes.models.oneshot import magnitude_mask
from spdy_recipes.sensitivity.database import Database, obtain_database

from .conftest import CNN_SHAPE, CNN_SPEC, TEST_GRID

GRID = [float(s) for s in TEST_GRID.split(",")]


def _setup(seed=0):
    bundle = load_model(CNN_SPEC, 8, CNN_SHAPE)
    calibration, _ = load_calibration("builtin:images", bundle, 16, 0, seed)
    return bundle, prunable_layers(bundle.module), calibration


def _layer_output_error(bundle, layer, calibration, weight):
    """|Y' - Y|² / |Y|² of one layer's real forward on the calibration inputs."""
    module = dict(bundle.module.named_modules())[layer.module]
    captured = []
    handle = module.register_forward_hook(lambda m, args, out: captured.append(args[0]))
    with torch.no_grad():
        for inputs, _ in calibration.batches(8):
            bundle.module(*inputs.values())
    handle.remove()
    dense_weight = module.weight.detach().clone()
    errors, norms = 0.0, 0.0
    with torch.no_grad():
        for x in captured:
            dense = module(x)
            module.weight.copy_(weight)
            pruned = module(x)
            module.weight.copy_(dense_weight)
            bias = module.bias[:, None, None] if module.bias is not None and dense.ndim == 4 else module.bias
            if bias is not None:
                dense, pruned = dense - bias, pruned - bias
            errors += float(((pruned - dense) ** 2).sum())
            norms += float((dense ** 2).sum())
    return errors / norms


def test_reconstruction_lowers_layer_error_and_keeps_the_magnitude_mask():
    bundle, layers, calibration = _setup()
    database, _, _ = obtain_database(bundle, layers, GRID, calibration, "obs")
    params = parameters_by_name(bundle.module)
    ratios = []
    for layer in layers:
        for level, sparsity in enumerate(GRID[1:], start=1):
            weight = database.weight(layer.name, level)
            keep = magnitude_mask(params[layer.name], sparsity)
            assert torch.equal(weight[~keep], torch.zeros(int((~keep).sum())))  # exactly the magnitude zeros
            assert (weight == 0).float().mean().item() == pytest.approx(sparsity, abs=1 / weight.numel() + 1e-6)
            fitted, magnitude = database.errors[layer.name][level], database.magnitude_errors[layer.name][level]
            assert fitted <= magnitude * 1.0001
            ratios.append(fitted / magnitude)
    assert sum(ratios) / len(ratios) < 0.6  # re-fitting removes most of the output error on average
    # the recorded error is the real layer's output error on the calibration inputs
    layer = layers[2]
    measured = _layer_output_error(bundle, layer, calibration, database.weight(layer.name, 3))
    assert measured == pytest.approx(database.errors[layer.name][3], rel=0.02)


def test_magnitude_database_is_the_mask_alone():
    bundle, layers, calibration = _setup()
    database, _, _ = obtain_database(bundle, layers, GRID, calibration, "magnitude")
    weight = parameters_by_name(bundle.module)[layers[1].name].detach()
    assert torch.equal(database.weight(layers[1].name, 4), weight * magnitude_mask(weight, GRID[4]))
    assert database.errors == database.magnitude_errors


def test_cache_is_hit_then_invalidated_by_other_data_or_weights():
    bundle, layers, calibration = _setup()
    first, path, hit = obtain_database(bundle, layers, GRID, calibration, "obs")
    again, path_again, hit_again = obtain_database(bundle, layers, GRID, calibration, "obs")
    assert path_again == path and hit_again and again.errors == first.errors
    _, _, other_data = _setup(seed=1)
    assert not obtain_database(bundle, layers, GRID, other_data, "obs")[2]
    with torch.no_grad():
        bundle.module.head.weight[0, 0] += 1.0
    changed, changed_path, hit_changed = obtain_database(bundle, layers, GRID, calibration, "obs")
    assert not hit_changed and changed_path != path and changed.key != first.key


def test_a_corrupt_database_file_is_a_clean_error(tmp_path):
    path = tmp_path / "db.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(SpdyError, match="malformed database"):
        Database.load(path)
