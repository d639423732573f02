"""Recipes for the training integrations' tests, solved on real DeepSparse profiles recorded once (tests/data),
and torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from spdy_recipes.emit import RecipeSettings
from spdy_recipes.emit.write import render_checked_recipe, write_recipe
from spdy_recipes.solve.settings import SolveSettings, best_reachable, solve

from .recorded import recorded_profile

REPO = Path(__file__).resolve().parents[1]


def write_test_recipe(recording: str, method: str, path: Path, epochs: float = 4, exclude: tuple[str, ...] = (),
                      **settings) -> dict[str, float]:
    """Write a ``method`` recipe to ``path`` from the recorded profile ``recording`` (tests/recorded.py), solved
    60% of the way to its best reachable speedup with the ``exclude`` layers kept dense; return its per-layer
    targets."""
    profile, profile_path = recorded_profile(recording)
    solve_settings = SolveSettings(exclude=exclude)
    plan = solve(profile, 1 + 0.6 * (best_reachable(profile, solve_settings) - 1), solve_settings)
    names = set(profile.layer_names)
    recipe = RecipeSettings(method=method, epochs=epochs, **settings)
    write_recipe(path, render_checked_recipe(plan, profile, profile_path, recipe, solve_settings, names))
    return dict(plan.pruned)


def write_int8_test_recipe(recording: str, path: Path, epochs: float = 4, exclude: tuple[str, ...] = (),
                           **settings) -> dict[str, float]:
    """Write an INT8 gmp recipe (block-4 pruning over the first half of ``epochs``, then quantization-aware
    training) to ``path`` for the plan ``write_test_recipe`` would solve on the recorded (fp32) profile: what the
    integrations train does not depend on the precision the plan was timed in. Return its per-layer targets."""
    from spdy_recipes.deployment import Deployment
    from spdy_recipes.emit.recipe import render_recipe
    from spdy_recipes.emit.validate import validate_recipe

    profile, _ = recorded_profile(recording)
    solve_settings = SolveSettings(exclude=exclude)
    plan = solve(profile, 1 + 0.6 * (best_reachable(profile, solve_settings) - 1), solve_settings)
    recipe = RecipeSettings(method="gmp", epochs=epochs, pruning_end_fraction=0.5, **settings)
    text = render_recipe(plan.pruned, recipe.for_model(profile.model["spec"]), {}, ["INT8 test recipe"],
                         Deployment("int8"))
    validate_recipe(text, dict(plan.pruned), set(profile.layer_names))
    write_recipe(path, text)
    return dict(plan.pruned)


def torchrun(module: str, args: list[str], processes: int = 2, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` under torchrun with ``processes`` CPU processes (gloo). A process that aborts
    prints every thread's Python stack (faulthandler) next to torchrun's summary naming its rank and exit code."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "OMP_NUM_THREADS": "1", "NM_DISABLE_ANALYTICS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "YOLO_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", module, *map(str, args)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def torchrun_failure(result: subprocess.CompletedProcess) -> str:
    """What a failed torchrun run printed that says why: the Python stacks faulthandler wrote for an aborted
    process (without its long list of loaded extension modules), then the end of the output."""
    text = result.stderr
    start = text.find("Fatal Python error")
    stacks = text[start:start + 6000].split("\nExtension modules:")[0] if start >= 0 else ""
    return stacks + "\n...\n" + text[-2500:] + "\n" + result.stdout[-1000:]

