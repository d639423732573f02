"""How long the steps of generate take: this checkout against a reference commit, side by side in one run.

The reference (default: the commit before issue 15's work) is checked out into a temporary git worktree. Each
phase runs in a fresh process per side, the two sides alternating, ``--runs`` times each; the table gives
each side's median and the ratio (reference / this checkout: above 1 is faster now). Phases:

  * ``dp``: ``solve_min_error`` alone on the fusion units of a stored profile (SPDY's prior, seeded per-layer
    coefficients, target 70% of the way to the best reachable speedup), median of 20 solves in the process;
  * ``plan``: ``plan_profile`` on the same profile (quantiles, units, DP, the plan), median of 20;
  * ``search``: SPDY's search (``--search-budget``-like ``--steps`` candidates, seed 0, 64 crops of
    ``builtin:images``, random-init weights), seconds per candidate and the best calibration loss found (equal
    on both sides: same results for a fixed seed); the database is built once before the timing and shared;
  * ``resolve``: ``spdy-recipe generate --hw PROFILE`` from the stored profile, the whole command (model
    build and graph hash included): the user's "change the target, re-solve" from cache.

    python benchmarks/speed.py                                  # ResNet50 (54 x 42), stored profile
    python benchmarks/speed.py --ref main~3 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = "3d875a4"  # main before issue 15
PROFILES = {  # model spec, input shape, batch, stored profile (relative to the repository)
    "resnet50": ("torchvision:resnet50", "3,224,224", 16, "tests/data/profiles/avx512/resnet50.json"),
    "mobilenet_v2": ("torchvision:mobilenet_v2", "3,224,224", 16,
                     "recipes/hardware/epyc-avx2-2core/torchvision-mobilenet_v2-bs16-c2.json"),
}

# Runs inside a process whose PYTHONPATH puts one side's checkout first; uses only APIs both sides have.
PHASE = r"""
import json, statistics, sys, time
import numpy as np
from spdy_recipes.profile import load_profile
from spdy_recipes.sensitivity import prior_errors
from spdy_recipes.solve import plan_profile, solve_min_error
from spdy_recipes.solve.planner import fastest_speedup, fusion_units
phase, path = sys.argv[1], sys.argv[2]
profile = load_profile(path)
names = profile.layer_names
errors = prior_errors(len(names), len(profile.grid), np.random.default_rng(0).uniform(0.1, 10, len(names)))
speedup = 1 + 0.7 * (fastest_speedup(profile, names) - 1)
units = fusion_units(profile, names)
planning = np.array([layer.times(0.9) for layer in profile.layers])
times = np.array([planning[u].sum(axis=0) for u in units])
unit_errors = np.array([errors[u].sum(axis=0) for u in units])
budget = profile.dense_ms / speedup - profile.fixed(0.9)
if phase == "search":
    from spdy_recipes.sensitivity.setup import CalibrationSettings, prepare
    from spdy_recipes.solve.objective import search_coefficients
    from spdy_recipes.models import load_model
    from spdy_recipes.solve.search import SearchSettings
    spec, shape, batch, steps = sys.argv[3], tuple(map(int, sys.argv[4].split(","))), int(sys.argv[5]), int(sys.argv[6])
    setup = prepare(load_model(spec, batch, shape), profile.grid, names, CalibrationSettings("builtin:images", 64),
                    lambda _: None)
    start = time.perf_counter()
    state, _ = search_coefficients(setup, profile, speedup, 0.9, SearchSettings(seed=0, steps=steps),
                                   lambda _: None, lambda _: None)
    print(json.dumps({"seconds": (time.perf_counter() - start) / state.step, "loss": state.best_loss}))
    sys.exit()
run = {"dp": lambda: solve_min_error(times, unit_errors, budget),
       "plan": lambda: plan_profile(profile, speedup, names, errors)}[phase]
run()
took = []
for _ in range(20):
    start = time.perf_counter(); run(); took.append(time.perf_counter() - start)
print(json.dumps({"seconds": statistics.median(took), "speedup": speedup}))
"""


def _phase_seconds(checkout: Path, phase: str, model: str, databases: Path, steps: int) -> tuple[float, str]:
    """Seconds of ``phase`` on ``checkout`` (per solve, per candidate or per command), and what it found."""
    spec, shape, batch, profile = PROFILES[model]
    env = {**os.environ, "PYTHONPATH": str(checkout), "NM_DISABLE_ANALYTICS": "1"}
    path = str(REPO / profile)
    if phase != "resolve":
        with tempfile.TemporaryDirectory() as cache:  # a fresh search checkpoint; databases shared
            (Path(cache) / "databases").symlink_to(databases)
            out = subprocess.run([sys.executable, "-c", PHASE, phase, path, spec, shape, str(batch), str(steps)],
                                 env={**env, "SPDY_RECIPES_CACHE": cache}, capture_output=True, text=True,
                                 check=True, cwd=checkout)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        return result["seconds"], f"loss {result['loss']:.6g}" if "loss" in result else ""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-c", "from spdy_recipes.cli import main; main()", "generate", "--model", spec,
                   "--input-shape", shape, "--batch-size", str(batch), "--hw", path, "--speedup", "1.5",
                   "--method", "gmp", "-o", str(Path(tmp) / "r.yaml")]
        start = time.perf_counter()
        subprocess.run(command, env={**env, "SPDY_RECIPES_CACHE": tmp}, capture_output=True, check=True, cwd=checkout)
        return time.perf_counter() - start, ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default=REFERENCE, help="the reference commit (default: main before issue 15)")
    parser.add_argument("--models", default="resnet50,mobilenet_v2")
    parser.add_argument("--phases", default="dp,plan,search,resolve")
    parser.add_argument("--runs", type=int, default=3, help="processes per side and phase, alternating")
    parser.add_argument("--steps", type=int, default=30, help="search candidates per run (phase search)")
    args = parser.parse_args()
    cpu = subprocess.run("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2", shell=True, capture_output=True,
                         text=True).stdout.strip()
    isa = " ".join(sorted(set(Path("/proc/cpuinfo").read_text().split()) & {"avx2", "avx512f", "avx512_vnni"}))
    print(f"# {cpu} ({isa}), {os.cpu_count()} cores; reference {args.ref} vs this checkout; median of "
          f"{args.runs} processes per side")
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "reference"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(reference), args.ref],
                       capture_output=True, check=True)
        try:
            databases = Path(tmp) / "databases"  # built by the first search run, then shared: same key
            databases.mkdir()
            print("| model | phase | reference | this checkout | ratio | found (reference; now) |")
            print("|---|---|---|---|---|---|")
            for model in args.models.split(","):
                for phase in args.phases.split(","):
                    if phase == "search":  # build the database once, outside the timing
                        _phase_seconds(REPO, phase, model, databases, 1)
                    sides = {"reference": [], "now": []}
                    found = {}
                    for _ in range(args.runs):
                        for side, checkout in (("reference", reference), ("now", REPO)):
                            seconds, found[side] = _phase_seconds(checkout, phase, model, databases, args.steps)
                            sides[side].append(seconds)
                    old, new = (statistics.median(sides[k]) for k in ("reference", "now"))
                    unit, scale = {"dp": ("ms", 1000), "plan": ("ms", 1000), "search": ("s/candidate", 1),
                                   "resolve": ("s", 1)}[phase]
                    print(f"| {model} | {phase} | {old * scale:.3g} {unit} | {new * scale:.3g} {unit} | "
                          f"{old / new:.1f}x | {found['reference']}; {found['now']} |", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(reference)],
                           capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
