"""Generated recipes load in real SparseML and train real steps to the solved per-layer sparsities."""

from __future__ import annotations

import copy

import pytest
import torch

from spdy_recipes.emit import RecipeSettings
from spdy_recipes.emit.write import render_checked_recipe, write_recipe
from spdy_recipes.models import load_model, prunable_layers
from spdy_recipes.models.oneshot import magnitude_prune, weight_sparsity
from spdy_recipes.solve.settings import SolveSettings, solve

from .conftest import BERT_SEQ, CNN_SHAPE, CNN_SPEC

STEPS_PER_EPOCH = 8
EPOCHS = 4  # pruning from epoch 1 to 3, mask updates every 4 steps (= num_grads for M-FAC)


def _plan(profile):
    """A plan at 60% of the way from dense to the best reachable speedup."""
    best = solve(profile, 1.0001).max_speedup
    plan = solve(profile, 1 + 0.6 * (best - 1))
    assert plan.pruned, "the plan should prune something"
    return plan


def _write(path, plan, profile, profile_path, settings, names):
    write_recipe(path, render_checked_recipe(plan, profile, profile_path, settings, SolveSettings(), set(names)))


def _train(module, manager, kind):
    torch.manual_seed(0)
    module.train()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)
    optimizer = manager.modify(module, optimizer, steps_per_epoch=STEPS_PER_EPOCH)
    losses = []
    for _ in range(int(manager.max_epochs) * STEPS_PER_EPOCH):
        if kind == "hf":
            ids = torch.randint(0, 1000, (8, BERT_SEQ[0]))
            logits = module(ids, torch.ones_like(ids))[0]
            labels = torch.randint(0, 2, (8,))
        else:
            logits = module(torch.randn(8, *CNN_SHAPE))
            labels = torch.randint(0, 10, (8,))
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    manager.finalize(module)
    return losses


@pytest.mark.parametrize("method", ["gmp", "acdc", "mfac"])
@pytest.mark.parametrize("model", ["cnn", "bert"])
def test_training_reaches_solved_sparsities(method, model, request, tmp_path):
    from sparseml.pytorch.optim import ScheduledModifierManager

    profile, profile_path = request.getfixturevalue(f"{model}_profile")
    spec, shape = (CNN_SPEC, CNN_SHAPE) if model == "cnn" else (request.getfixturevalue("bert_spec"), BERT_SEQ)
    bundle = load_model(spec, 8, shape)
    names = [layer.name for layer in prunable_layers(bundle.module)]
    plan = _plan(profile)
    settings = RecipeSettings(method=method, epochs=EPOCHS, num_grads=4, pruning_start_fraction=0.25)
    path = tmp_path / "recipe.yaml"
    _write(path, plan, profile, profile_path, settings, names)

    manager = ScheduledModifierManager.from_yaml(str(path))
    losses = _train(bundle.module, manager, bundle.kind)
    assert all(torch.isfinite(torch.tensor(losses)))
    reached = weight_sparsity(bundle.module, names)
    for name in names:
        target = plan.sparsities[name]
        if target:
            assert reached[name] == pytest.approx(target, abs=0.005), name
        else:
            assert reached[name] < 0.01, f"{name} should stay dense"


def test_constant_recipe_holds_one_shot_sparsity(cnn_profile, tmp_path):
    from sparseml.pytorch.optim import ScheduledModifierManager

    profile, profile_path = cnn_profile
    bundle = load_model(CNN_SPEC, 8, CNN_SHAPE)
    names = [layer.name for layer in prunable_layers(bundle.module)]
    plan = _plan(profile)
    path = tmp_path / "constant.yaml"
    _write(path, plan, profile, profile_path, RecipeSettings(method="constant", epochs=2), names)
    module = copy.deepcopy(bundle.module)
    magnitude_prune(module, plan.pruned)
    _train(module, ScheduledModifierManager.from_yaml(str(path)), "cnn")
    reached = weight_sparsity(module, list(plan.pruned))
    for name, target in plan.pruned.items():
        assert reached[name] == pytest.approx(target, abs=0.005), name


def test_obs_recipe_loads_with_layerwise_targets(cnn_profile, tmp_path):
    from sparseml.pytorch.optim import ScheduledModifierManager

    profile, profile_path = cnn_profile
    names = {layer.name for layer in profile.layers}
    plan = _plan(profile)
    path = tmp_path / "obs.yaml"
    _write(path, plan, profile, profile_path, RecipeSettings(method="obs"), names)
    manager = ScheduledModifierManager.from_yaml(str(path))
    obs = [m for m in manager.modifiers if type(m).__name__ == "OBSPruningModifier"]
    assert obs and all(m.global_sparsity is False for m in obs)
    assert {p for m in obs for p in m.params} == set(plan.pruned)
