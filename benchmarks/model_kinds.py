"""Which architectures go through: profile one model per family in DeepSparse on this machine and print the
README's supported-models table (status, layers pruned and left dense with the reason, the engine's
supported share of the graph, the analysed speedup of the fastest uniform level at this small size).

Nothing is downloaded: torchvision builders get ``weights=None`` (and ``weights_backbone=None``), the
transformers models are tiny configs (``tests/kind_models.py``), YOLOv8 is ultralytics' own yaml. The
fast grid of issue 13 (``0,0.5,0.7,0.9``, one repeat, batch 4) keeps a model to seconds or minutes; the
speedups at these sizes are not the deployment's (AVX2 gains little on small inputs), the statuses are.

    python benchmarks/model_kinds.py                      # every family
    python benchmarks/model_kinds.py --only gpt2,resnext  # some
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.kind_models

from guarantee import machine_line  # noqa: E402
from spdy_recipes.errors import SpdyError  # noqa: E402
from spdy_recipes.models import load_model  # noqa: E402
from spdy_recipes.profile.backends import get_backend  # noqa: E402
from spdy_recipes.profile.grid import parse_grid  # noqa: E402
from spdy_recipes.profile.measure import TimingSettings, measure_profile  # noqa: E402
from tests.kind_models import write_hf_config  # noqa: E402

KIND = "python:tests.kind_models"
FAMILIES = [  # (short name, family, spec, input shape)
    ("resnet18", "torchvision CNN (ResNet)", "torchvision:resnet18", (3, 96, 96)),
    ("mobilenet_v2", "torchvision CNN with depthwise layers", "torchvision:mobilenet_v2", (3, 96, 96)),
    ("resnext", "grouped convolutions (ResNeXt)", "torchvision:resnext50_32x4d", (3, 64, 64)),
    ("googlenet", "training-only aux heads (GoogLeNet)", "torchvision:googlenet", (3, 96, 96)),
    ("inception", "training-only aux heads (Inception-v3)", "torchvision:inception_v3", (3, 96, 96)),
    ("vit_b_16", "torchvision ViT (nn.MultiheadAttention)", "torchvision:vit_b_16", (3, 224, 224)),
    ("lraspp", "segmentation (LR-ASPP MobileNetV3)", "torchvision:lraspp_mobilenet_v3_large", (3, 96, 96)),
    ("fasterrcnn", "detection (Faster R-CNN)", "torchvision:fasterrcnn_mobilenet_v3_large_fpn", (3, 96, 96)),
    ("bert", "BERT-style encoder (hf)", "hf:bert", (64,)),
    ("gpt2", "GPT-2 (hf, tied lm_head)", "hf:gpt2", (32,)),
    ("llama", "Llama (hf, SDPA)", "hf:llama", (32,)),
    ("bart", "BART classifier (hf, encoder-decoder)", "hf:bart", (32,)),
    ("t5", "T5 seq2seq (hf, decoder inputs)", "hf:t5", (32,)),
    ("albert", "ALBERT (hf, one layer shared across depth)", "hf:albert", (32,)),
    ("mobilebert", "MobileBERT (hf)", "hf:mobilebert", (32,)),
    ("hf_vit", "ViT (hf, pixel_values)", "hf:vit", None),
    ("yolov5", "YOLOv5n", "yolov5:yolov5n.yaml", (3, 128, 128)),
    ("yolov8", "YOLOv8n (frozen DFL conv)", f"{KIND}:yolov8n", (3, 128, 128)),
    ("mha", "nn.TransformerEncoder", f"{KIND}:attention_encoder", (16, 64)),
    ("unet", "ConvTranspose2d decoder", f"{KIND}:upsampler", (3, 64, 64)),
    ("reparam", "weight_norm / prune hook / frozen layers", f"{KIND}:reparametrised", (3, 32, 32)),
    ("shared", "a module called several times", f"{KIND}:shared_blocks", (3, 32, 32)),
]


def _bert_config(folder: Path) -> Path:
    from tests.toy_models import write_tiny_bert

    return write_tiny_bert(folder)


def run(name: str, family: str, spec: str, shape, folder: Path, backend) -> list[str]:
    if spec.startswith("hf:"):
        config = spec[3:]
        spec = f"hf:{_bert_config(folder / config) if config == 'bert' else write_hf_config(folder / config, config)}"
    started = time.monotonic()
    try:
        bundle = load_model(spec, batch_size=4, input_shape=shape)
        profile = measure_profile(bundle, parse_grid("0,0.5,0.7,0.9"), backend.max_cores(), "local", backend,
                                  TimingSettings(iterations=3, warmup=1, repeats=1), log=lambda _: None)
    except SpdyError as exc:
        return [family, "refused", "-", "-", "-", "-", str(exc).split(": ", 1)[-1][:90]]
    left = profile.model.get("left_dense") or {}
    reasons = sorted({reason.split(":")[0].split(" (")[0] for reason in left.values()})
    uniform = max(profile.total_ms[0] / total for total in profile.total_ms[1:])
    shown = "x".join(map(str, bundle.input_shape))
    return [family, "works" if not left else "works, some dense", str(len(profile.layers)), str(len(left)),
            f"{profile.engine['fraction_of_supported_ops']:.2f}", f"{uniform:.2f}x at {shown}",
            "; ".join(reasons) + f" ({time.monotonic() - started:.0f} s)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="comma list of short names: " +
                        ", ".join(row[0] for row in FAMILIES))
    args = parser.parse_args()
    chosen = [row for row in FAMILIES if not args.only or row[0] in args.only.split(",")]
    backend = get_backend()
    print(machine_line(4) + "; grid 0,0.5,0.7,0.9, 1 repeat", flush=True)
    header = ["family", "status", "layers", "left dense", "supported ops", "fastest uniform", "why dense / note"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, family, spec, shape in chosen:
            print("| " + " | ".join(run(name, family, spec, shape, Path(tmp), backend)) + " |", flush=True)


if __name__ == "__main__":
    main()
