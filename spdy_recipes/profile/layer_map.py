"""Which engine operations compute which prunable layer of a model's ONNX export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpdyError
from ..models import ModelBundle, PrunableLayer, prunable_layers
from ..models.layers import layer_flops
from ..onnx_export import output_to_module
from .attribution import attribute, fused_modules
from .engine import EngineRun


@dataclass(frozen=True)
class LayerMap:
    """A model's prunable layers, their dense FLOPs, and the ONNX outputs each one computes."""

    layers: list[PrunableLayer]
    flops: dict[str, int]  # by layer name
    output_module: dict[str, str]

    @classmethod
    def build(cls, bundle: ModelBundle, onnx_path: Path) -> LayerMap:
        layers = prunable_layers(bundle.module)
        if not layers:
            raise SpdyError(f"{bundle.spec} has no Conv or Linear layer to prune")
        flops = layer_flops(bundle.module, bundle.inputs, layers)
        output_module = output_to_module(onnx_path, {layer.module for layer in layers})
        unmapped = sorted({layer.module for layer in layers} - set(output_module.values()))
        if unmapped:
            raise SpdyError(f"cannot find layer(s) {', '.join(unmapped[:5])} in the exported ONNX graph")
        return cls(layers, flops, output_module)

    def split(self, run: EngineRun) -> tuple[dict[str, float], float, dict[str, str]]:
        """Per-layer milliseconds and kernels of one analysed run, and the time after the last layer."""
        module_flops = {layer.module: self.flops[layer.name] for layer in self.layers}
        per_module, tail, kernels = attribute(run, self.output_module, module_flops)
        return ({layer.name: per_module[layer.module] for layer in self.layers}, tail,
                {layer.name: kernels[layer.module] for layer in self.layers})

    def fused_groups(self, run: EngineRun) -> list[list[str]]:
        """Layer names that one engine operation of ``run`` computes together (two or more per group)."""
        name_of = {layer.module: layer.name for layer in self.layers}
        return [[name_of[module] for module in group] for group in fused_modules(run, self.output_module)]
