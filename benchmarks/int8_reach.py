"""How far do INT8 and block-4 reach beyond fp32 pruning? Uniform plans of both, timed side by side.

For every model: the dense fp32 export (the reference), the dense INT8 export, and every prunable layer at
each of ``--levels`` in two deployments, fp32 with unstructured magnitude zeros and INT8 with block-4
magnitude zeros (SparseML's quantization, ``models.quantize``). All are timed in one interleaved run of real
``Engine`` calls. Prints each model's speedup over dense fp32 with its 95% interval, then the reach of each
deployment (its fastest level) and their ratio (issue 26 asks for INT8 + block-4 at 2x the fp32 reach or
more), with the CPU model and ISA: INT8 sparse kernels are native only with AVX-512 VNNI.

    python benchmarks/int8_reach.py                                   # MobileNetV2 (ImageNet weights), ResNet50
    python benchmarks/int8_reach.py --models resnet18 --levels 0.8,0.9
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from guarantee import bundle_of, machine_line
from spdy_recipes.deployment import FP32, Deployment
from spdy_recipes.models.export import engine_inputs, export_onnx, export_pruned
from spdy_recipes.models.layers import layer_survey
from spdy_recipes.profile.backends import get_backend
from spdy_recipes.profile.engine import TimingRule
from spdy_recipes.profile.noise import paired_speedup

RULE = TimingRule(min_rounds=8, max_rounds=30, precision=0.02, max_seconds=120.0)
INT8 = Deployment("int8", "block4")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobilenet_v2,resnet50")
    parser.add_argument("--levels", default="0.8,0.9,0.95", help="uniform sparsities of every prunable layer")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    levels = [float(level) for level in args.levels.split(",")]
    backend = get_backend("deepsparse")
    print(machine_line(args.batch_size))
    for name in args.models.split(","):
        bundle = bundle_of(name, args.batch_size)
        layers = [layer.name for layer in layer_survey(bundle.module)[0]]
        with tempfile.TemporaryDirectory(prefix="spdy-int8-") as tmp:
            folder = Path(tmp)
            labelled = [("dense fp32", export_onnx(bundle, folder / "fp32.onnx")),
                        ("dense INT8", export_onnx(bundle, folder / "int8.onnx", INT8))]
            for level in levels:
                plan = dict.fromkeys(layers, level)
                labelled += [
                    (f"fp32 unstructured {level}", export_pruned(bundle, plan, folder / f"f{level}.onnx", FP32)),
                    (f"INT8 block-4 {level}", export_pruned(bundle, plan, folder / f"i{level}.onnx", INT8))]
            timed = backend.time_rounds([str(path) for _, path in labelled], engine_inputs(bundle, labelled[0][1]),
                                        bundle.batch_size, backend.max_cores(), RULE)
        print(f"\n{name}: {len(layers)} prunable layers, batch {args.batch_size}, {timed.rounds} interleaved rounds"
              + (f", other processes used {timed.busy:.0%} of the CPU" if timed.busy else ""))
        reach: dict[str, float] = {}
        for index, (label, _) in enumerate(labelled):
            paired = paired_speedup(timed.samples[0], timed.samples[index])
            print(f"  {label:24} {timed.median_ms(index):8.2f} ms  {paired.speedup:5.2f}x over dense fp32 "
                  f"({paired.low:.2f}-{paired.high:.2f})")
            kind = "INT8" if "INT8" in label else "fp32"
            reach[kind] = max(reach.get(kind, 0.0), paired.speedup)
        print(f"  reach: fp32 unstructured {reach['fp32']:.2f}x, INT8 block-4 {reach['INT8']:.2f}x: "
              f"{reach['INT8'] / reach['fp32']:.2f}x the fp32 reach")
    return 0


if __name__ == "__main__":
    sys.exit(main())
