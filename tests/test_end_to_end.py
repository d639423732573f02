"""integrations/end_to_end.sh: generate -> train -> verify --trained, as the README runs it."""

from __future__ import annotations

import json
import os
import subprocess

import torch

from spdy_recipes.emit import read_recipe

from .integration_helpers import REPO


def test_torchvision_chain_trains_to_the_recipe_and_verifies(tmp_path):
    env = {**os.environ, "GRID": "0,0.5,0.7,0.9", "EPOCHS": "2", "SPEEDUP": "1.2", "TOLERANCE": "0.5",
           "REPEATS": "1"}
    result = subprocess.run([str(REPO / "integrations" / "end_to_end.sh"), "torchvision", str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    targets = read_recipe(tmp_path / "recipe.yaml").targets
    assert f"all {len(targets)} recipe layers at their target" in result.stdout
    state = torch.load(tmp_path / "train" / "model.pt", weights_only=True)
    for name, target in targets.items():
        assert abs(float((state[name] == 0).float().mean()) - target) <= 0.005, name
    assert json.loads((tmp_path / "train" / "sparsity_report.json").read_text())["epochs"] == 2
