"""Schedules SparseML can carry (issue 13, kind 10): M-FAC's real gradient-count rule, checked against real
SparseML training, the minimum steps per epoch in the recipe header, its memory, and AC/DC's whole epochs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from integrations.common.recipe import load_recipe
from spdy_recipes.emit import RecipeSettings, render_recipe
from spdy_recipes.emit.schedule import fewest_gradients, mask_update_steps, min_steps_per_epoch
from spdy_recipes.emit.write import render_checked_recipe
from spdy_recipes.errors import SpdyError
from spdy_recipes.solve.settings import SolveSettings, solve

# 2 epochs, pruning from 0.2 to 1.5 every 0.5: updates at 0.2, 0.7, 1.2 and 1.5; 8 gradients before each
MFAC = RecipeSettings(method="mfac", epochs=2, init_lr=0.01, num_grads=8, pruning_start_fraction=0.1,
                      update_frequency=0.5)


def test_sparseml_updates_masks_at_the_end_epoch_too():
    # the 4-epoch default: from 0.4 to 3.0 every 0.5; at 160 steps per epoch the last two updates are 16 apart
    assert mask_update_steps(0.4, 3.0, 0.5, 160, 640) == [64, 144, 224, 304, 384, 464, 480]
    assert fewest_gradients(0.4, 3.0, 0.5, 160, 640) == 16
    assert min_steps_per_epoch(0.4, 3.0, 0.5, 4, 64) == 640


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))


def _train(recipe_path, steps_per_epoch: int) -> None:
    """Real SparseML training of ``_model`` for the recipe's epochs."""
    model = _model()
    recipe = load_recipe(recipe_path, {}, model)
    optimizer = recipe.manager.modify(model, torch.optim.SGD(model.parameters(), lr=0.01),
                                      steps_per_epoch=steps_per_epoch)
    generator = torch.Generator().manual_seed(0)
    for _ in range(recipe.total_steps(steps_per_epoch)):
        loss = model(torch.randn(4, 3, 8, 8, generator=generator)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_mfac_minimum_steps_per_epoch_is_sparsemls_own(tmp_path):
    path = tmp_path / "mfac.yaml"
    path.write_text(render_recipe({"0.weight": 0.5, "3.weight": 0.6}, MFAC, {}, []))
    fewest = min_steps_per_epoch(0.2, 1.5, 0.5, 2, 8)
    assert 30 <= fewest <= 40  # the first gap, 0.2 epochs, must hold 8 steps (its own step included)
    recipe = load_recipe(path, {}, _model())
    with pytest.raises(SpdyError, match=f"train at least {fewest} steps per epoch"):
        recipe.check_schedule(fewest - 1)
    with pytest.raises(RuntimeError, match=r"only \d were collected from the expected 8"):
        _train(path, fewest - 1)  # what SparseML does with the schedule we refuse
    recipe.check_schedule(fewest)
    _train(path, fewest)


def test_mfac_recipe_header_states_steps_and_memory(cnn_profile, capsys):
    profile, path = cnn_profile
    plan = solve(profile, 1.02, SolveSettings())
    layers = {layer.name for layer in profile.layers}
    text = render_checked_recipe(plan, profile, path, MFAC, SolveSettings(), layers)
    steps = min_steps_per_epoch(0.2, 1.5, 0.5, 2, 8)
    assert f"train at least {steps} steps per epoch" in text and "min_steps_per_epoch: " + str(steps) in text
    huge = RecipeSettings(method="mfac", epochs=2, num_grads=8, fisher_block_size=10**9)
    render_checked_recipe(plan, profile, path, huge, SolveSettings(), layers)
    assert "warning: M-FAC will need about" in capsys.readouterr().err


def test_acdc_update_frequency_that_rounds_to_zero_is_refused(cnn_profile, tmp_path):
    profile, path = cnn_profile
    plan = solve(profile, 1.02, SolveSettings())
    layers = {layer.name for layer in profile.layers}
    with pytest.raises(SpdyError, match="rounds to 0"):
        render_checked_recipe(plan, profile, path, RecipeSettings(method="acdc", update_frequency=0.4),
                              SolveSettings(), layers)
    recipe_path = tmp_path / "acdc.yaml"
    recipe_path.write_text(render_checked_recipe(plan, profile, path, RecipeSettings(method="acdc", epochs=4),
                                                 SolveSettings(), layers))
    with pytest.raises(SpdyError, match="AC/DC|update_frequency|SparseML cannot load"):
        from .toy_models import small_cnn

        load_recipe(recipe_path, {"pruning_update_frequency": 0.4}, small_cnn()).check_schedule(100)
