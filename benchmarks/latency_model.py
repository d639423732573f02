"""How well does the profile predict the engine? Uncalibrated and calibrated predictions against real calls.

For every model: the local profile (measured here with its calibration on real engine calls, cached), then
plans the calibration never saw: ``--random`` mixed plans (every fusion block -- layers one engine operation
fuses, ``Profile.blocks`` -- dense or at a random level, another seed than the calibration's) and SPDY's own
plans for 1.3x, 1.5x and 2.0x on the calibrated table (where feasible). Every plan is pruned one-shot by
magnitude, exported, and timed against dense with real engine calls, all in one interleaved run; then the
whole run is repeated, the measurement's own reproducibility. Prints per plan the uncalibrated prediction (the
analysis alone), the calibrated one, the measured speedup and its re-measure, then per model and overall the
median and maximum |predicted/measured - 1| and the median re-measure spread, with the profile's analysis and
calibration times and the CPU model and ISA. (The suite asserts nothing about these numbers: the machine may be
busy while it runs.)

    python benchmarks/latency_model.py                          # the models, batch 16
    python benchmarks/latency_model.py --models mobilenet_v2,resnet18 --random 10
    python benchmarks/latency_model.py --models mpnet-base --plans-per-run 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from guarantee import MODELS, bundle_of, machine_line
from spdy_recipes.errors import SpdyError
from spdy_recipes.models.export import engine_inputs, export_onnx, export_pruned
from spdy_recipes.profile import Profile
from spdy_recipes.profile.backends import get_backend
from spdy_recipes.profile.engine import TimingRule
from spdy_recipes.profile.grid import parse_grid
from spdy_recipes.profile.noise import paired_speedup
from spdy_recipes.profile.store import ProfileRequest, obtain_profile
from spdy_recipes.solve.settings import solve

SEED = 7  # the random plans' seed (the calibration's plans use another)
RULE = TimingRule(min_rounds=8, max_rounds=30, precision=0.02, max_seconds=90.0)


def plans(profile: Profile, random_plans: int) -> list[tuple[str, dict[str, int]]]:
    """(label, layer -> level) of the random mixed plans and SPDY's own plans of ``profile``."""
    grid, blocks = profile.grid, profile.blocks()
    rng = np.random.default_rng(SEED)
    out = []
    for i in range(random_plans):
        dense_share = (0.25, 0.5, 0.75)[i % 3]
        chosen = [0 if rng.random() < dense_share else int(rng.integers(1, len(grid))) for _ in blocks]
        out.append((f"mixed #{i + 1}", {name: k for block, k in zip(blocks, chosen, strict=True) for name in block}))
    for target in (1.3, 1.5, 2.0):
        try:
            out.append((f"spdy {target:.1f}x", dict(solve(profile, target).levels)))
        except SpdyError:
            print(f"  spdy {target:.1f}x: infeasible on this profile", flush=True)
    return out


def measure(profile: Profile, bundle, labelled: list[tuple[str, dict[str, int]]], folder: Path,
            per_run: int) -> list[float]:
    """Each plan's paired speedup over dense, timed in interleaved runs of real engine calls, ``per_run`` plans
    and dense in each (0: all in one; the engine holds every model of a run in memory at once)."""
    backend = get_backend("deepsparse")
    dense = export_onnx(bundle, folder / "dense.onnx")
    size = per_run or len(labelled)
    speedups = []
    for start in range(0, len(labelled), size):
        chunk = labelled[start:start + size]
        paths = [str(export_pruned(bundle, {n: profile.grid[k] for n, k in levels.items()}, folder / f"p{i}.onnx"))
                 for i, (_, levels) in enumerate(chunk)]
        timed = backend.time_rounds([str(dense)] + paths, engine_inputs(bundle, dense), bundle.batch_size,
                                    profile.cores, RULE)
        speedups += [paired_speedup(timed.samples[0], rounds).speedup for rounds in timed.samples[1:]]
        for path in paths:
            Path(path).unlink()
    return speedups


def off(predicted: float, measured: float) -> float:
    return predicted / measured - 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--random", type=int, default=10, help="random mixed plans per model")
    parser.add_argument("--plans-per-run", type=int, default=0,
                        help="plans timed with dense in one run (0: all; 4 keeps MPNet-base within 24 GiB)")
    args = parser.parse_args()
    cores = get_backend("deepsparse").max_cores()
    print(machine_line(args.batch_size))
    summary: dict[str, list[float]] = {"uncalibrated": [], "calibrated": [], "re-measure": []}
    for name in args.models.split(","):
        spec, shape, grid, timing, _ = MODELS[name]
        bundle = bundle_of(name, args.batch_size)
        profile, _ = obtain_profile(bundle, ProfileRequest(hw="local", grid=parse_grid(grid), cores=cores,
                                                           timing=timing))
        analysed = profile.without_calibration()
        engine = profile.engine
        print(f"\n{name}: dense {profile.dense_ms:.1f} ms (analysis {analysed.dense_ms:.1f} ms), "
              f"{len(profile.layers)} layers in {len(profile.blocks())} fusion blocks; {profile.calibration_label()}; "
              f"profile {engine.get('analysis_seconds')} s analysis + {engine.get('calibration_seconds')} s "
              f"calibration", flush=True)
        labelled = plans(profile, args.random)
        with tempfile.TemporaryDirectory(prefix="spdy-latency-") as tmp:
            first = measure(profile, bundle, labelled, Path(tmp), args.plans_per_run)
            again = measure(profile, bundle, labelled, Path(tmp), args.plans_per_run)
        errors: dict[str, list[float]] = {"uncalibrated": [], "calibrated": [], "re-measure": []}
        print(f"  {'plan':12} {'uncal.':>7} {'calib.':>7} {'measured':>8} {'again':>7} {'uncal. err':>10} "
              f"{'calib. err':>10} {'re-meas.':>8}")
        for (label, levels), measured, repeat in zip(labelled, first, again, strict=True):
            raw, calibrated = analysed.predicted_speedup(levels), profile.predicted_speedup(levels)
            errors["uncalibrated"].append(abs(off(raw, measured)))
            errors["calibrated"].append(abs(off(calibrated, measured)))
            errors["re-measure"].append(abs(off(repeat, measured)))
            print(f"  {label:12} {raw:7.3f} {calibrated:7.3f} {measured:8.3f} {repeat:7.3f} "
                  f"{off(raw, measured):+10.1%} {off(calibrated, measured):+10.1%} {off(repeat, measured):+8.1%}",
                  flush=True)
        for kind, values in errors.items():
            summary[kind].extend(values)
            print(f"  {kind:12} median {statistics.median(values):6.1%} max {max(values):6.1%}")
    print(f"\nall models, |predicted/measured - 1| (re-measure: |again/first - 1|), "
          f"{len(summary['calibrated'])} plans:")
    for kind, values in summary.items():
        print(f"  {kind:12} median {statistics.median(values):6.1%} max {max(values):6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
