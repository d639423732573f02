"""Measure a hardware profile: export the model, analyse it in DeepSparse at every grid level."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..errors import SpdyError
from ..models import ModelBundle, prunable_layers
from ..models.fingerprint import graph_hash
from ..models.layers import layer_flops
from ..onnx_export import export_onnx, output_to_module
from . import deepsparse_timer
from .attribution import attribute
from .hardware import describe_host
from .schema import LayerTimes, Profile


def measure_profile(
    bundle: ModelBundle,
    grid: list[float],
    num_cores: int,
    hardware_name: str,
    iterations: int = 10,
    warmup: int = 3,
    repeats: int = 1,
    log=lambda message: print(message, file=sys.stderr, flush=True),
) -> Profile:
    """Time every Conv/Linear layer of ``bundle`` at every ``grid`` level inside the whole model."""
    layers = prunable_layers(bundle.module)
    if not layers:
        raise SpdyError(f"{bundle.spec} has no Conv or Linear layer to prune")
    flops = layer_flops(bundle.module, bundle.inputs, layers)
    module_flops = {layer.module: flops[layer.name] for layer in layers}
    numpy_inputs = [tensor.numpy() for tensor in bundle.inputs.values()]
    per_layer: dict[str, list[float]] = {layer.module: [] for layer in layers}
    other_ms, total_ms = [], []
    with tempfile.TemporaryDirectory(prefix="spdy-profile-") as tmp:
        onnx_path = export_onnx(bundle, Path(tmp) / "model.onnx")
        output_module = output_to_module(onnx_path, set(module_flops))
        unmapped = sorted(set(module_flops) - set(output_module.values()))
        if unmapped:
            raise SpdyError(f"cannot find layer(s) {', '.join(unmapped[:5])} in the exported ONNX graph")
        started = time.monotonic()
        for index, sparsity in enumerate(grid):
            runs = [
                deepsparse_timer.analyze(str(onnx_path), numpy_inputs, bundle.batch_size, num_cores, sparsity,
                                         iterations, warmup)
                for _ in range(repeats)
            ]
            shares = [attribute(run, output_module, module_flops) for run in runs]
            for module in per_layer:
                per_layer[module].append(round(statistics.median(s[0][module] for s in shares), 5))
            other_ms.append(round(statistics.median(s[1] for s in shares), 5))
            total_ms.append(round(statistics.median(run.total_ms for run in runs), 5))
            log(f"[profile] level {index + 1}/{len(grid)} sparsity {sparsity:.4f}: {total_ms[-1]:.2f} ms "
                f"({time.monotonic() - started:.0f} s elapsed)")
    return Profile(
        model={
            "spec": bundle.spec,
            "graph_hash": graph_hash(bundle),
            "batch_size": bundle.batch_size,
            "input_shapes": {name: list(t.shape) for name, t in bundle.inputs.items()},
        },
        hardware={"name": hardware_name, **describe_host()},
        engine={
            "name": "deepsparse",
            "version": deepsparse_timer.engine_version(),
            "num_cores": num_cores,
            "iterations": iterations,
            "warmup_iterations": warmup,
            "repeats": repeats,
            "method": "model_debug_analysis with imposed kernel sparsity; fused ops split by FLOPs",
        },
        grid=list(grid),
        layers=[
            LayerTimes(layer.name, layer.module, layer.kind, list(layer.shape), flops[layer.name], per_layer[layer.module])
            for layer in layers
        ],
        other_ms=other_ms,
        total_ms=total_ms,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tool_version=__version__,
    )
