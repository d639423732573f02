"""Does the speedup guarantee hold on real measurements? Predicted vs measured DeepSparse speedup.

For every model and target: solve on the local profile (measured here, cached), prune one-shot by
magnitude to the solved sparsities, export, and time dense and pruned alternating in one run. Then
close the loop as ``generate --verify`` does: while the measurement is short of the target, re-solve
tighter and measure again. Prints, per point: predicted, measured (first solve), measured/target,
predicted/measured, and the verified result.

    python benchmarks/guarantee.py                       # the five models of issue 3, batch 16
    python benchmarks/guarantee.py --models resnet18 --speedups 2,3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from spdy_recipes.errors import SpdyError
from spdy_recipes.grid import parse_grid
from spdy_recipes.models import load_model
from spdy_recipes.models.spec import parse_input_shape
from spdy_recipes.pipeline import solve
from spdy_recipes.profile.backends import get_backend
from spdy_recipes.profile.measure import TimingSettings
from spdy_recipes.profile.store import ProfileRequest, obtain_profile
from spdy_recipes.verify import PlanTimer, Round, meet_target


def bert_base_dir() -> str:
    """A folder holding BERT-base's config (random weights: timing needs only the architecture)."""
    from transformers import BertConfig

    folder = Path(tempfile.gettempdir()) / "spdy-bench-bert-base"
    folder.mkdir(exist_ok=True)
    config = BertConfig()
    config.architectures = ["BertModel"]
    config.save_pretrained(folder)
    return str(folder)


# name -> (spec, input shape, profile grid, timing): the large models get a coarser grid and fewer
# analysed iterations so the whole benchmark fits in about an hour on 2 cores.
MODELS = {
    "resnet18": ("torchvision:resnet18", None, "spdy:22", TimingSettings(10, 3, 3)),
    "resnet50": ("torchvision:resnet50", None, "spdy:16", TimingSettings(6, 2, 3)),
    "mobilenet_v2": ("torchvision:mobilenet_v2", None, "spdy:22", TimingSettings(10, 3, 3)),
    "bert-base": (None, "128", "spdy:12", TimingSettings(4, 1, 2)),
    "yolov5s": ("yolov5:yolov5s.yaml", "3,640,640", "spdy:12", TimingSettings(4, 1, 2)),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--speedups", default="1.5,2.0,2.5,3.0")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=8, help="timing rounds (4 timed calls per model each)")
    parser.add_argument("--max-rounds", type=int, default=4, help="solve-and-measure rounds when short")
    args = parser.parse_args()
    backend = get_backend("deepsparse")
    cores = backend.max_cores()
    targets = [float(s) for s in args.speedups.split(",")]
    points = []
    print(f"DeepSparse {backend.version()}, {backend.describe_host()['cpu_model']}, {cores} cores, "
          f"batch {args.batch_size}")
    header = (f"{'model':13} {'target':>6} {'pred':>6} {'meas':>6} {'meas/tgt':>8} {'pred/meas':>9} "
              f"{'verified':>8} {'rounds':>6} {'solved for':>10}")
    for name in args.models.split(","):
        spec, shape, grid, timing = MODELS[name]
        spec = spec or f"hf:{bert_base_dir()}"
        started = time.monotonic()
        bundle = load_model(spec, args.batch_size, parse_input_shape(shape))
        profile, _ = obtain_profile(bundle, ProfileRequest("local", parse_grid(grid), cores, timing=timing))
        print(f"\n{name}: profile dense {profile.dense_ms:.1f} ms, {len(profile.layers)} layers, "
              f"{len(profile.grid)} levels x {profile.repeats} repeats ({time.monotonic() - started:.0f} s)")
        print(header, flush=True)
        with PlanTimer(bundle, backend, cores, args.rounds) as timer:
            for target in targets:
                try:
                    plan = solve(profile, target)
                except SpdyError as exc:
                    print(f"{name:13} {target:>6.2f}  infeasible: {exc}", flush=True)
                    continue
                first = Round(plan, timer.measure(plan.pruned))
                measured = first.measurement.speedup
                try:
                    history = meet_target(lambda s: solve(profile, target, solve_speedup=s), timer, target, 0.0,
                                          args.max_rounds, lambda _: None, first)
                    verified, rounds, solved_for = (history[-1].measurement.speedup, len(history),
                                                    history[-1].plan.solve_speedup)
                except SpdyError as exc:
                    verified, rounds, solved_for = float("nan"), args.max_rounds, float("nan")
                    print(f"  (not met: {exc})")
                points.append((plan.predicted_speedup / measured, measured / target, verified / target))
                print(f"{name:13} {target:>6.2f} {plan.predicted_speedup:>6.3f} {measured:>6.3f} "
                      f"{measured / target:>8.3f} {plan.predicted_speedup / measured:>9.3f} {verified:>8.3f} "
                      f"{rounds:>6} {solved_for:>10.3f}", flush=True)
    if points:
        errors = [abs(p - 1) for p, _, _ in points]
        first_ok = sum(m >= 1 for _, m, _ in points)
        verified_ok = sum(v >= 1 for _, _, v in points)
        print(f"\n{len(points)} feasible points: median |pred/meas - 1| = {statistics.median(errors):.3f} "
              f"(max {max(errors):.3f}); measured >= target on the first solve {first_ok}/{len(points)}, "
              f"after verification {verified_ok}/{len(points)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
