"""How well does the profile predict mixed-sparsity plans? Predicted vs measured DeepSparse speedup.

For every model: the local profile (measured here, cached), then plans of three kinds, each pruned
one-shot by magnitude, exported and timed against dense in one run (alternating blocks):
  * uniform plans (every prunable layer at one level: what the profile itself measured),
  * random mixed plans (every fusion block -- layers one engine operation fused, ``Profile.blocks`` -- at a
    seeded random grid level, dense included: the plans the DP can pick),
  * SPDY's own plans for 1.3x, 1.5x and 2.0x (where feasible).
Prints predicted/measured - 1 per plan, then its median and maximum per kind, with the CPU model and ISA;
the first plan is measured a second time at the end, the measurement's own reproducibility.
(The suite asserts nothing about these numbers: the machine may be busy while it runs.)

    python benchmarks/latency_model.py                          # the five models, batch 16
    python benchmarks/latency_model.py --models resnet18 --random 4
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
import sys

import numpy as np

from guarantee import MODELS, bert_base_dir, machine_line
from spdy_recipes.errors import SpdyError
from spdy_recipes.grid import parse_grid
from spdy_recipes.models import load_model
from spdy_recipes.models.spec import parse_input_shape
from spdy_recipes.pipeline import solve
from spdy_recipes.profile import Profile
from spdy_recipes.profile.backends import get_backend
from spdy_recipes.profile.store import ProfileRequest, obtain_profile
from spdy_recipes.verify import PlanTimer


def predicted_speedup(profile: Profile, levels: dict[str, int]) -> float:
    """Dense over the profile's median prediction for layers at ``levels`` (missing layers dense)."""
    pruned_ms = profile.fixed_ms + sum(layer.times_ms[levels.get(layer.name, 0)] for layer in profile.layers)
    return profile.dense_ms / pruned_ms


def plans(profile: Profile, random_plans: int, seed: int) -> list[tuple[str, str, dict[str, int]]]:
    """(kind, label, layer -> level) for the uniform, random mixed and SPDY plans of ``profile``."""
    grid, names = profile.grid, profile.layer_names
    out = [("uniform", f"all at {grid[k]:.2f}", {name: k for name in names})
           for k in sorted({len(grid) // 2, len(grid) - 2})]
    rng = np.random.default_rng(seed)
    blocks = profile.blocks()
    for i in range(random_plans):
        levels = [int(rng.integers(0, len(grid))) for _ in blocks]
        out.append(("random", f"mixed #{i + 1}", {name: k for block, k in zip(blocks, levels) for name in block}))
    for target in (1.3, 1.5, 2.0):
        try:
            out.append(("spdy", f"spdy {target:.1f}x", dict(solve(profile, target).levels)))
        except SpdyError:
            print(f"  spdy {target:.1f}x: infeasible on this profile", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--random", type=int, default=10, help="random mixed plans per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--design", default="uniform", choices=["uniform", "mixed"], help="how the profile is measured")
    args = parser.parse_args()
    backend = get_backend("deepsparse")
    cores = backend.max_cores()
    print(machine_line(args.batch_size))
    errors: dict[str, list[float]] = {}
    for name in args.models.split(","):
        spec, shape, grid, timing, rounds = MODELS[name]
        bundle = load_model(spec or f"hf:{bert_base_dir()}", args.batch_size, parse_input_shape(shape))
        profile, _ = obtain_profile(bundle, ProfileRequest("local", parse_grid(grid), cores,
                                                           timing=replace(timing, design=args.design)))
        print(f"\n{name}: {profile.design} profile, dense {profile.dense_ms:.1f} ms, {len(profile.layers)} layers "
              f"in {len(profile.blocks())} fusion blocks", flush=True)
        with PlanTimer(bundle, backend, cores, rounds) as timer:
            first: tuple[str, dict, float] | None = None
            for kind, label, levels in plans(profile, args.random, args.seed):
                predicted = predicted_speedup(profile, levels)
                measured = timer.measure({n: profile.grid[k] for n, k in levels.items()}).speedup
                error = predicted / measured - 1
                errors.setdefault(kind, []).append(abs(error))
                first = first or (label, levels, measured)
                print(f"  {label:16} predicted {predicted:6.3f}x measured {measured:6.3f}x "
                      f"predicted/measured - 1 {error:+7.1%}", flush=True)
            if first:  # the measurement's own reproducibility: the floor under any model's error
                label, levels, measured = first
                again = timer.measure({n: profile.grid[k] for n, k in levels.items()}).speedup
                errors.setdefault("re-measure", []).append(abs(again / measured - 1))
                print(f"  {label:16} measured again {again:6.3f}x (first {measured:.3f}x): {again / measured - 1:+.1%}",
                      flush=True)
    print("\n|predicted/measured - 1| by kind of plan:")
    for kind, values in errors.items():
        print(f"  {kind:8} median {statistics.median(values):6.1%} max {max(values):6.1%} ({len(values)} plans)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
