"""Which engine operations compute which prunable layer of a model's ONNX export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpdyError
from ..models import ModelBundle, PrunableLayer
from ..models.export import output_to_module
from ..models.layers import layer_flops, layer_survey
from .attribution import attribute, fused_modules
from .engine import EngineRun


@dataclass(frozen=True)
class LayerMap:
    """A model's prunable layers, their dense FLOPs (summed over every call of a module that runs several
    times), the ONNX outputs each one computes, and the weights left dense with the reason."""

    layers: list[PrunableLayer]
    flops: dict[str, int]  # by layer name
    output_module: dict[str, str]
    left_dense: dict[str, str]  # weight name -> why a recipe leaves it dense

    @classmethod
    def build(cls, bundle: ModelBundle, onnx_path: Path) -> LayerMap:
        """Raises SpdyError when the model has no prunable layer, or a layer that runs is not in the graph."""
        candidates, left_dense = layer_survey(bundle.module)
        flops = layer_flops(bundle.module, bundle.inputs, candidates)
        layers = []
        for layer in candidates:
            if flops[layer.name]:
                layers.append(layer)
            else:  # e.g. GoogLeNet's and Inception-v3's auxiliary heads: they run in training only
                left_dense[layer.name] = ("its module is never called in the eval forward pass (a training-only "
                                          "head, or a weight applied with F.linear, which cannot be timed)")
        if not layers:
            reasons = "; ".join(f"{name}: {why}" for name, why in list(left_dense.items())[:3])
            raise SpdyError(f"{bundle.spec} has no Conv or Linear layer to prune"
                            + (f" ({reasons})" if reasons else ""))
        modules = dict(bundle.module.named_modules())
        output_module = output_to_module(onnx_path, {layer.module: modules[layer.module].weight for layer in layers})
        unmapped = sorted({layer.module for layer in layers} - set(output_module.values()))
        if unmapped:
            raise SpdyError(f"cannot find layer(s) {', '.join(unmapped[:5])} in the exported ONNX graph")
        return cls(layers, {layer.name: flops[layer.name] for layer in layers}, output_module, left_dense)

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
