"""Export a model to ONNX for DeepSparse and map ONNX node outputs back to PyTorch modules."""

from __future__ import annotations

import contextlib
import copy
import io
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from ..deployment import FP32, Deployment
from ..errors import SpdyError, first_line
from .call import takes_keywords
from .oneshot import magnitude_prune
from .quantize import export_int8
from .spec import ModelBundle

# 14: the first opset with scaled_dot_product_attention and triu (nn.MultiheadAttention, ViT, HF Llama/BART)
OPSET = 14


@contextlib.contextmanager
def _attention_fast_path_off():
    """nn.MultiheadAttention's fused eval "fast path" has no ONNX form: trace the plain computation."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def export_onnx(bundle: ModelBundle, path: str | Path, deployment: Deployment = FP32) -> Path:
    """Export ``bundle`` with the TorchScript exporter (DeepSparse cannot read the dynamo one), at ``OPSET``,
    in ``deployment.precision`` (INT8: ``models.quantize.export_int8``). Transformers models take their inputs
    by keyword, others by position (``models.call``). Raises SpdyError naming the exporter's first line when
    the model cannot be exported."""
    path = Path(path)
    if deployment.resolved().precision == "int8":
        with _attention_fast_path_off():
            return export_int8(bundle.module, bundle.inputs, path, OPSET, bundle.output_names)
    args = (dict(bundle.inputs),) if takes_keywords(bundle.module) else tuple(bundle.inputs.values())
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _attention_fast_path_off():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                bundle.module,
                args,
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=list(bundle.inputs),
                output_names=bundle.output_names,
                do_constant_folding=True,
            )
        except Exception as exc:  # the exporter raises many types
            raise SpdyError(f"ONNX export of {bundle.spec} failed: {first_line(exc)}") from None
    return path


def export_pruned(bundle: ModelBundle, sparsities: dict[str, float], path: str | Path,
                  deployment: Deployment = FP32) -> Path:
    """A copy of the model magnitude-pruned to ``sparsities`` (fractions of each named weight set to real
    zeros, in ``deployment.mask_type``'s pattern, ``models.oneshot.magnitude_prune``), exported to ``path`` in
    ``deployment.precision``; the bundle is left as it was."""
    deployment = deployment.resolved()
    pruned = copy.deepcopy(bundle)
    magnitude_prune(pruned.module, sparsities, deployment.mask)
    return export_onnx(pruned, path, deployment)


def engine_inputs(bundle: ModelBundle, onnx_path: str | Path) -> list[np.ndarray]:
    """The bundle's input arrays that the exported graph takes, in the graph's order. The exporter drops
    inputs the traced forward did not use (BART's all-ones attention mask is folded away, for one);
    raises SpdyError for a graph input the bundle lacks."""
    import onnx

    names = [value.name for value in onnx.load(str(onnx_path), load_external_data=False).graph.input]
    unknown = [name for name in names if name not in bundle.inputs]
    if unknown:
        raise SpdyError(f"the exported graph of {bundle.spec} takes {', '.join(unknown)}, which the model's inputs "
                        f"({', '.join(bundle.inputs)}) do not hold")
    return [bundle.inputs[name].numpy() for name in names]


def module_of_node(node_name: str) -> str:
    """The module path encoded in a TorchScript-exported node name.

    ``/features/features.1/conv/conv.0/conv.0.0/Conv`` -> ``features.1.conv.0.0``: each scope part is
    either a new attribute or a longer name for the previous one (``conv`` then ``conv.0``).
    """
    parts = [part for part in node_name.split("/")[:-1] if part]
    segments: list[str] = []
    for part in parts:
        if segments and part.startswith(segments[-1] + "."):
            segments[-1] = part
        else:
            segments.append(part)
    return ".".join(segments)


def _without_call_index(node_name: str) -> str:
    """The node name with the exporter's repeat-call suffixes dropped (``/block/block.0_2/Conv`` is the third
    call of ``block.0``)."""
    return "/".join(re.sub(r"_\d+$", "", part) for part in node_name.split("/"))


def _scope_modules(node_name: str) -> list[str]:
    """The module paths a node's scope can name, most literal first: as exported, without repeat-call
    suffixes, and without a quantization wrapper's last ``.module`` scope (SparseML's INT8 export names the
    integer conv of ``layer1.0.conv1`` ``/layer1/layer1.0/conv1/module/Conv_quant``)."""
    found = []
    for module in (module_of_node(node_name), module_of_node(_without_call_index(node_name))):
        found += [module] + ([module.removesuffix(".module")] if module.endswith(".module") else [])
    return found


def output_to_module(onnx_path: str | Path, weights: dict[str, torch.Tensor]) -> dict[str, str]:
    """Map each ONNX node output name to the module (a key of ``weights``, module path -> its weight) that
    produced it. A node belongs to a module by its scope name, also on the second and later calls of a
    module that runs several times (every call maps to the one module). A layer found by no scope (a
    weight applied without calling its module, like nn.MultiheadAttention's ``out_proj``) is matched by
    the node that consumes its weight, under its own name or as an equal (possibly transposed) constant."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path), load_external_data=False)
    graph = model.graph
    modules = set(weights)
    mapping: dict[str, str] = {}
    for node in graph.node:
        module = next((m for m in _scope_modules(node.name) if m in modules), None)
        if module is not None:
            for output in node.output:
                mapping[output] = module
    missing = modules - set(mapping.values())
    if not missing:
        return mapping
    consumers: dict[str, list] = {}
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            for name in node.input[1:2] if node.op_type != "Gemm" else node.input[:2]:
                consumers.setdefault(name, []).append(node)
    constants = {init.name: init for init in graph.initializer if init.name in consumers}
    for module in sorted(missing):
        weight = weights[module].detach().float().numpy()
        names = [f"{module}.weight"] + [name for name, init in constants.items()
                                         if _same_values(numpy_helper.to_array(init), weight)]
        for name in names:
            for node in consumers.get(name, []):
                for output in node.output:
                    mapping.setdefault(output, module)
    return mapping


def _same_values(array: np.ndarray, weight: np.ndarray) -> bool:
    """Whether an ONNX constant is ``weight`` or its transpose (MatMul keeps Linear weights as (in, out))."""
    if array.size != weight.size or array.ndim != weight.ndim:
        return False
    for candidate in (weight, weight.T if weight.ndim == 2 else None):
        if candidate is not None and array.shape == candidate.shape and np.allclose(array, candidate, atol=0):
            return True
    return False
