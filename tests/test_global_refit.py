"""Global re-fitting after stitching: lowers the loss against dense and keeps every pruned weight at zero."""

from __future__ import annotations

from spdy_recipes.models import load_model
from spdy_recipes.models.layers import parameters_by_name
from spdy_recipes.sensitivity.global_refit import dense_copy, global_refit
from spdy_recipes.sensitivity.setup import CalibrationSettings, prepare

from .conftest import CNN_SHAPE, CNN_SPEC, TEST_GRID


def test_global_refit_lowers_the_loss_and_keeps_the_masks():
    bundle = load_model(CNN_SPEC, 8, CNN_SHAPE)
    grid = [float(s) for s in TEST_GRID.split(",")]
    setup = prepare(bundle, grid, [layer for layer in parameters_by_name(bundle.module) if layer.endswith("weight")],
                    CalibrationSettings(source="builtin:images", samples=16, holdout=8), lambda _: None)
    dense = dense_copy(bundle.module)
    setup.stitcher.apply_levels({name: len(grid) - 1 for name in setup.selected})  # everything at 95%
    params = parameters_by_name(bundle.module)
    zeros = {name: params[name] == 0 for name in setup.selected}
    before = setup.scorer.evaluate().loss
    losses = global_refit(bundle.module, dense, setup.selected, setup.calibration, 8, 20, learning_rate=1e-3)
    setup.stitcher.weights_changed()
    assert len(losses) == 20 and losses[-1] < losses[0]
    assert setup.scorer.evaluate().loss < before
    for name, zero in zeros.items():
        assert bool((params[name][zero] == 0).all()) and params[name].requires_grad
    setup.stitcher.restore()
    assert all(bool((params[name] == dense_param).all()) for name, dense_param in
               parameters_by_name(dense).items() if name in zeros)
