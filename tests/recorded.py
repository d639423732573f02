"""Real DeepSparse profiles recorded once per CPU kind and committed under ``tests/data/profiles/<isa>/``.

Logic that does not depend on timing (solver, planner, search, emit, regenerate, compare's matching, verify's
decisions, the integrations' recipes) runs on these files, so it gives the same answers on every machine.
Record a set on a quiet machine of a new kind with ``python -m tests.recorded [NAME ...]`` (about 15 minutes);
it writes ``tests/data/profiles/<isa>/`` for the machine it runs on.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from spdy_recipes.profile import Profile, load_profile

DATA = Path(__file__).resolve().parent / "data" / "profiles"
TEST_GRID = "0,0.5,0.7,0.8,0.9,0.95"
CNN_SPEC = "python:tests.toy_models:small_cnn"
CNN_SHAPE = (3, 128, 128)
BERT_SEQ = (64,)
#: the CPU kind whose recordings the logic tests and the integrations' recipes use (the AVX-512 profiles the
#: project has are MobileNetV2's under recipes/hardware/, used by tests/test_isas.py)
DEFAULT_ISA = "avx2"


@dataclass(frozen=True)
class Recording:
    """How one recorded profile was measured: the model spec (``{minilm}``, ``{bert}`` and ``{yolov5n3}`` stand
    for folders made at recording time), the per-sample input shape and the batch size."""

    spec: str
    shape: tuple[int, ...]
    batch_size: int
    iterations: int = 10
    warmup: int = 3
    repeats: int = 3
    num_classes: int | None = None
    isa: str | None = None  # the CPU kind it was recorded on (None: DEFAULT_ISA)


RECORDINGS = {
    "cnn": Recording(CNN_SPEC, CNN_SHAPE, 8),
    "tiny-bert": Recording("hf:{bert}", BERT_SEQ, 8),
    # the integrations' models, at a batch and size where AVX2 machines gain from sparsity too (at batch 4 and
    # 32-64 px or 32 tokens every sparse level was slower than dense there); layer names do not depend on it
    "resnet18": Recording("torchvision:resnet18", (3, 224, 224), 16, iterations=5),
    "minilm-classification": Recording("hf:{minilm}:BertForSequenceClassification", (64,), 16, iterations=5),
    "minilm-qa": Recording("hf:{minilm}:BertForQuestionAnswering", (64,), 16, iterations=5),
    "yolov5n-3": Recording("yolov5:{yolov5n3}", (3, 320, 320), 16, iterations=5),
    # the models SparseML's own training commands build (tests/test_sparseml_commands.py); recorded on an AMD
    # EPYC with AVX-512 (recording needs no particular kind: only the layer names and a reachable target matter)
    "sparseml-resnet18-5": Recording("sparseml:resnet18", (3, 64, 64), 16, iterations=5, num_classes=5,
                                     isa="avx512"),
    "densenet121-5": Recording("torchvision:densenet121", (3, 64, 64), 16, iterations=5, num_classes=5,
                               isa="avx512"),
    "tiny-bert-task": Recording("hf:{bert_task}:BertForSequenceClassification", (64,), 16, iterations=5,
                                isa="avx512"),
}


def profile_path(name: str, isa: str | None = None) -> Path:
    """The file of recording ``name`` made on an ``isa`` machine (None: the kind it was recorded on)."""
    return DATA / (isa or RECORDINGS[name].isa or DEFAULT_ISA) / f"{name}.json"


@functools.cache
def recorded_profile(name: str, isa: str | None = None) -> tuple[Profile, Path]:
    """(Profile, path) of the recorded profile ``name`` measured on an ``isa`` machine (None: the kind it was
    recorded on)."""
    path = profile_path(name, isa)
    return load_profile(path), path


def _record(isa_folder: Path, names: list[str]) -> None:  # pragma: no cover - run by hand on a quiet machine
    import re
    import tempfile

    import yolov5

    from integrations.huggingface.train import MINILM
    from spdy_recipes.models import load_model
    from spdy_recipes.profile import save_profile
    from spdy_recipes.profile.backends import get_backend
    from spdy_recipes.profile.grid import parse_grid
    from spdy_recipes.profile.measure import TimingSettings, measure_profile

    from .toy_models import write_tiny_bert, write_tiny_bert_task

    backend = get_backend()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "yolov5n-3.yaml"
        text = (Path(yolov5.__file__).parent / "models" / "yolov5n.yaml").read_text()
        cfg.write_text(re.sub(r"(?m)^nc: \d+", "nc: 3", text))
        folders = {"bert": write_tiny_bert(Path(tmp) / "tiny-bert"), "minilm": MINILM, "yolov5n3": cfg,
                   "bert_task": write_tiny_bert_task(Path(tmp) / "tiny-bert-task", Path(MINILM))}
        for name, recording in RECORDINGS.items():
            if names and name not in names:
                continue
            bundle = load_model(recording.spec.format(**folders), batch_size=recording.batch_size,
                                input_shape=recording.shape, num_classes=recording.num_classes)
            timing = TimingSettings(iterations=recording.iterations, warmup=recording.warmup, repeats=recording.repeats)
            profile = measure_profile(bundle, parse_grid(TEST_GRID), backend.max_cores(), "local",
                                      backend, timing, log=lambda _: None)
            save_profile(profile, isa_folder / f"{name}.json")
            print(f"{name}: dense {profile.dense_ms:.2f} ms, spread {max(profile.level_spread()):.2f}", flush=True)


if __name__ == "__main__":  # pragma: no cover
    from spdy_recipes.profile.backends import get_backend as _backend

    _record(DATA / _backend().describe_host()["isa"], sys.argv[1:])
