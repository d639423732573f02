"""Predicted vs measured DeepSparse speedup of SPDY profiles, measured against dense in one run.

For each target: solve on the (cached) local profile, prune the model one-shot by magnitude to the
solved sparsities, export it, and time dense and pruned interleaved in the engine.

    python benchmarks/speedup.py --model torchvision:resnet18 --speedups 1.5,2.0,2.5
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

from spdy_recipes.errors import SpdyError
from spdy_recipes.grid import parse_grid
from spdy_recipes.models import load_model
from spdy_recipes.models.spec import parse_input_shape
from spdy_recipes.onnx_export import export_onnx
from spdy_recipes.pipeline import ProfileRequest, default_cores, obtain_profile, solve
from spdy_recipes.profile.store import hardware_root
from spdy_recipes.verify import magnitude_prune, measure_speedup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="torchvision:resnet18")
    parser.add_argument("--input-shape", default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--speedups", default="1.5,2.0,2.5")
    parser.add_argument("--grid", default="spdy")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved timed runs per model")
    args = parser.parse_args()

    bundle = load_model(args.model, args.batch_size, parse_input_shape(args.input_shape))
    cores = default_cores()
    request = ProfileRequest("local", cores, parse_grid(args.grid), hardware_root())
    profile, _ = obtain_profile(bundle, request)
    inputs = [t.numpy() for t in bundle.inputs.values()]
    print(f"{args.model}, batch {args.batch_size}, {cores} cores, DeepSparse; profile dense {profile.dense_ms:.2f} ms")
    print(f"{'target':>7} {'predicted':>9} {'measured':>9} {'meas/target':>11} {'pred/meas':>9} {'dense ms':>9} {'pruned ms':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        dense_onnx = export_onnx(bundle, Path(tmp) / "dense.onnx")
        for target in [float(s) for s in args.speedups.split(",")]:
            try:
                plan = solve(profile, target)
            except SpdyError as exc:
                print(f"{target:>7.2f}  infeasible: {exc}")
                continue
            pruned = copy.deepcopy(bundle)
            magnitude_prune(pruned.module, plan.pruned)
            pruned_onnx = export_onnx(pruned, Path(tmp) / f"pruned-{target}.onnx")
            result = measure_speedup(str(dense_onnx), str(pruned_onnx), inputs, args.batch_size, cores, args.rounds)
            print(f"{target:>7.2f} {plan.predicted_speedup:>9.3f} {result.speedup:>9.3f} "
                  f"{result.speedup / target:>11.3f} {plan.predicted_speedup / result.speedup:>9.3f} "
                  f"{result.dense_ms:>9.2f} {result.pruned_ms:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
