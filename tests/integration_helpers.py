"""Recipes for the training integrations' tests: a real DeepSparse profile of the model (measured once per
session and model), solved at 60% of the way to the best reachable speedup."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

from spdy_recipes.emit import RecipeSettings
from spdy_recipes.grid import parse_grid
from spdy_recipes.models import load_model, prunable_layers
from spdy_recipes.pipeline import SolveSettings, render_checked_recipe, solve, write_recipe
from spdy_recipes.profile import save_profile
from spdy_recipes.profile.backends import get_backend
from spdy_recipes.profile.measure import TimingSettings, measure_profile

from .conftest import TEST_GRID

REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _profile(spec: str, shape: tuple[int, ...], folder: str):
    bundle = load_model(spec, batch_size=4, input_shape=shape)
    backend = get_backend()
    profile = measure_profile(bundle, parse_grid(TEST_GRID), backend.max_cores(), "local", backend,
                              TimingSettings(iterations=5, warmup=2, repeats=1), log=lambda _: None)
    path = Path(folder) / f"{bundle.slug}.json"
    save_profile(profile, path)
    names = {layer.name for layer in prunable_layers(bundle.module)}
    return profile, path, names


def write_test_recipe(spec: str, shape: tuple[int, ...], method: str, path: Path, profile_dir: Path,
                      epochs: float = 4, **settings) -> dict[str, float]:
    """Write a ``method`` recipe for ``spec`` to ``path``; return its per-layer targets."""
    profile, profile_path, names = _profile(spec, shape, str(profile_dir))
    best = solve(profile, 1.0001).max_speedup
    plan = solve(profile, 1 + 0.6 * (best - 1))
    recipe = RecipeSettings(method=method, epochs=epochs, **settings)
    write_recipe(path, render_checked_recipe(plan, profile, profile_path, recipe, SolveSettings(), names))
    return dict(plan.pruned)


def torchrun(module: str, args: list[str], processes: int = 2, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` under torchrun with ``processes`` CPU processes (gloo)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NM_DISABLE_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "YOLO_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", module, *map(str, args)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
