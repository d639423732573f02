"""Does the speedup guarantee hold on real measurements? Predicted vs measured DeepSparse speedup.

For every model and target: solve on the local profile (measured here, cached), prune one-shot by
magnitude to the solved sparsities, export, and time dense and pruned alternating in one run. Then
close the loop as ``generate --verify`` does: while the measurement is short of the target, correct
the table with in-context layer times, re-solve (tighter if needed) and measure again. Prints, per
point: predicted and measured for the first solve (the profile alone), their ratios, and for the
verified plan its predicted speedup (on the table corrected by the earlier rounds' in-context times,
divided by the end-to-end shortfall they left unexplained) and its measured speedup.

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
from spdy_recipes.verify import PlanTimer, ShortOfTarget, meet_target


def bert_base_dir() -> str:
    """A folder holding BERT-base's config (random weights: timing needs only the architecture)."""
    from transformers import BertConfig

    folder = Path(tempfile.gettempdir()) / "spdy-bench-bert-base"
    folder.mkdir(exist_ok=True)
    config = BertConfig()
    config.architectures = ["BertModel"]
    config.save_pretrained(folder)
    return str(folder)


# name -> (spec, input shape, profile grid, timing of profile and in-context analyses, end-to-end timing
# rounds): the large models get a coarser grid and fewer runs so the whole benchmark fits in about an
# hour on 2 cores.
MODELS = {
    "resnet18": ("torchvision:resnet18", None, "spdy:22", TimingSettings(10, 3, 3), 8),
    "resnet50": ("torchvision:resnet50", None, "spdy:16", TimingSettings(6, 2, 3), 6),
    "mobilenet_v2": ("torchvision:mobilenet_v2", None, "spdy:22", TimingSettings(10, 3, 3), 8),
    "bert-base": (None, "128", "spdy:12", TimingSettings(4, 1, 2), 4),
    "yolov5s": ("yolov5:yolov5s.yaml", "3,640,640", "spdy:12", TimingSettings(4, 1, 2), 4),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--speedups", default="1.5,2.0,2.5,3.0")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-rounds", type=int, default=4, help="solve-and-measure rounds when short")
    args = parser.parse_args()
    backend = get_backend("deepsparse")
    cores = backend.max_cores()
    targets = [float(s) for s in args.speedups.split(",")]
    points = []
    print(f"DeepSparse {backend.version()}, {backend.describe_host()['cpu_model']}, {cores} cores, "
          f"batch {args.batch_size}")
    header = (f"{'model':13} {'target':>6} {'pred':>6} {'meas':>6} {'meas/tgt':>8} {'pred/meas':>9} "
              f"{'ver. pred':>9} {'ver. meas':>8} {'rounds':>6} {'solved for':>10}")
    for name in args.models.split(","):
        spec, shape, grid, timing, rounds = MODELS[name]
        spec = spec or f"hf:{bert_base_dir()}"
        started = time.monotonic()
        bundle = load_model(spec, args.batch_size, parse_input_shape(shape))
        profile, _ = obtain_profile(bundle, ProfileRequest("local", parse_grid(grid), cores, timing=timing))
        print(f"\n{name}: profile dense {profile.dense_ms:.1f} ms, {len(profile.layers)} layers, "
              f"{len(profile.grid)} levels x {profile.repeats} repeats ({time.monotonic() - started:.0f} s)")
        print(header, flush=True)
        with PlanTimer(bundle, backend, cores, rounds, analysis=timing) as timer:
            for target in targets:
                try:
                    plan = solve(profile, target)
                except SpdyError as exc:
                    print(f"{name:13} {target:>6.2f}  infeasible: {exc}", flush=True)
                    continue
                try:
                    history = meet_target(lambda s, context: solve(profile, target, solve_speedup=s, context=context),
                                          timer, target, 0.0, args.max_rounds, lambda _: None, plan)
                except ShortOfTarget as exc:
                    history = exc.rounds
                    print(f"  not met: {exc}", flush=True)
                first, last = history[0], history[-1]
                measured, verified = first.measurement.speedup, last.measurement.speedup
                points.append((plan.predicted_speedup / measured, measured / target,
                               last.predicted_speedup / verified, verified / target))
                print(f"{name:13} {target:>6.2f} {plan.predicted_speedup:>6.3f} {measured:>6.3f} "
                      f"{measured / target:>8.3f} {plan.predicted_speedup / measured:>9.3f} "
                      f"{last.predicted_speedup:>9.3f} {verified:>8.3f} {len(history):>6} "
                      f"{last.plan.solve_speedup:>10.3f}", flush=True)
    if points:
        first_errors = [abs(p[0] - 1) for p in points]
        final_errors = [abs(p[2] - 1) for p in points]
        print(f"\n{len(points)} points feasible on the profile. First solve: median |pred/meas - 1| = "
              f"{statistics.median(first_errors):.3f} (max {max(first_errors):.3f}), measured >= target on "
              f"{sum(p[1] >= 1 for p in points)}/{len(points)}, min measured/target {min(p[1] for p in points):.3f}. "
              f"Verified: median |pred/meas - 1| = {statistics.median(final_errors):.3f}, measured >= target on "
              f"{sum(p[3] >= 1 for p in points)}/{len(points)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
