"""How the database and SPDY's search scale over Ray workers (``--workers``), measured side by side in one run.

For each model, on its stored profile (no engine timing), each configuration runs in turn with its own empty
cache: no Ray (one process, torch's own threads), ``--workers 1`` and ``--workers 2`` (local Ray instances,
one torch thread per worker). Per configuration it prints Ray's start, the database build (Hessians here, then
the layers: one Ray task each with workers), the scoring actors' start (each loads the model, the calibration
data and the database, and scores the dense model once) and the search (``--steps`` candidates, seed 0):
seconds and candidates per minute, and the ratio to the no-Ray run; then whether the searches chose the same
coefficients (they must, for any worker count). Finally it extrapolates a 1,000-sample search of 150 candidates (SPDY's
ResNet50 setting, section 5) from the measured cost per candidate, which grows with the calibration samples.

    python benchmarks/scaling.py                                 # MobileNetV2 (ImageNet weights) and ResNet50
    python benchmarks/scaling.py --models resnet50 --steps 12 --samples 64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from assets import mobilenet_v2_weights
from guarantee import machine_line
from spdy_recipes.cluster import ClusterSettings, open_cluster
from spdy_recipes.entrypoints import ModelRequest, SearchRequest, searched_solver
from spdy_recipes.profile import load_profile
from spdy_recipes.sensitivity.setup import CalibrationSettings
from spdy_recipes.solve.settings import SolveSettings, best_reachable

REPO = Path(__file__).resolve().parents[1]
MODELS = {  # spec, weights, stored profile (batch 16, 224 px)
    "mobilenet_v2": ("torchvision:mobilenet_v2", mobilenet_v2_weights,
                     "recipes/hardware/xeon-avx512-2core/torchvision-mobilenet_v2-bs16-c2.json"),
    "resnet50": ("torchvision:resnet50", lambda: None, "tests/data/profiles/avx512/resnet50.json"),
}
CONFIGS = ((None, "no Ray"), (1, "--workers 1"), (2, "--workers 2"))
PAPER_SAMPLES, PAPER_CANDIDATES = 1000, 150


def run(name: str, workers: int | None, args: argparse.Namespace) -> dict:
    spec, weights, path = MODELS[name]
    profile = load_profile(REPO / path)
    speedup = 1 + 0.6 * (best_reachable(profile) - 1)
    model = ModelRequest(spec=spec, batch_size=profile.batch_size, weights=weights())
    bundle = model.load()
    request = SearchRequest(CalibrationSettings(source="builtin:images", samples=args.samples, seed=0,
                                                database=args.database.get(name, "obs")),
                            str(args.steps[name]), device="cpu")
    with tempfile.TemporaryDirectory(prefix="spdy-scaling-") as cache:
        os.environ["SPDY_RECIPES_CACHE"] = cache
        started = time.monotonic()
        with open_cluster(ClusterSettings(workers=workers), lambda _: None) as cluster:
            ray_s = time.monotonic() - started
            started = time.monotonic()
            solver, _ = searched_solver(bundle, profile, speedup, SolveSettings(), request, lambda _: None, cluster)
            database_s = time.monotonic() - started
            started = time.monotonic()
            if solver.setup.pool is not None:  # the actors load the model, data and database once
                solver.setup.pool.start()
            actors_s = time.monotonic() - started
            started = time.monotonic()
            solver(profile)
            search_s = time.monotonic() - started
    state = solver.last
    assert state is not None
    return {"ray_s": ray_s, "database_s": database_s, "actors_s": actors_s, "search_s": search_s,
            "candidates": state.step, "best": state.best, "loss": state.best_loss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobilenet_v2,resnet50")
    parser.add_argument("--samples", type=int, default=64, help="calibration samples (builtin:images crops)")
    parser.add_argument("--steps", default="mobilenet_v2=40,resnet50=12", help="search candidates per model")
    parser.add_argument("--database", default="mobilenet_v2=obs,resnet50=magnitude",
                        help="database kind per model: ResNet50's obs re-fit takes minutes per configuration (its "
                             "candidates cost the same with either kind)")
    args = parser.parse_args()
    args.steps = {k: int(v) for k, v in (item.split("=") for item in args.steps.split(","))}
    args.database = dict(item.split("=") for item in args.database.split(","))
    print(machine_line(16) + f"; {args.samples} calibration samples; {os.cpu_count()} CPUs", flush=True)
    print(f"{'model':13} {'config':12} {'ray start':>9} {'database':>9} {'actors':>7} {'search':>8} "
          f"{'cand/min':>9} {'db ratio':>8} {'search ratio':>12}")
    for name in args.models.split(","):
        results = {}
        for workers, label in CONFIGS:
            results[label] = result = run(name, workers, args)
            base = results["no Ray"]
            per_minute = 60 * result["candidates"] / result["search_s"]
            print(f"{name:13} {label:12} {result['ray_s']:8.1f}s {result['database_s']:8.1f}s "
                  f"{result['actors_s']:6.1f}s {result['search_s']:7.1f}s {per_minute:9.1f} "
                  f"{base['database_s'] / result['database_s']:8.2f} "
                  f"{base['search_s'] / result['search_s']:12.2f}", flush=True)
        same = all(r["best"] == results["--workers 1"]["best"] for label, r in results.items() if label != "no Ray")
        print(f"{name}: --workers 1 and 2 chose the same coefficients: {same}; no Ray "
              f"{'the same too' if results['no Ray']['best'] == results['--workers 1']['best'] else 'differs'} "
              f"(loss {results['no Ray']['loss']:.6g} vs {results['--workers 1']['loss']:.6g})")
        for label, result in results.items():
            per_candidate = result["search_s"] / result["candidates"] * PAPER_SAMPLES / args.samples
            print(f"{name}: {PAPER_SAMPLES}-sample search of {PAPER_CANDIDATES} candidates, {label}: "
                  f"{per_candidate:.1f} s per candidate, about {PAPER_CANDIDATES * per_candidate / 60:.0f} min "
                  f"(extrapolated from {args.samples} samples)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
