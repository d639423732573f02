"""Export a model to ONNX for DeepSparse and map ONNX node outputs back to PyTorch modules."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch

from .errors import SpdyError
from .models import ModelBundle


def export_onnx(bundle: ModelBundle, path: str | Path) -> Path:
    """Export ``bundle`` with the TorchScript exporter (DeepSparse cannot read the dynamo one)."""
    path = Path(path)
    args = tuple(bundle.inputs.values())
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                bundle.module,
                args,
                str(path),
                dynamo=False,
                opset_version=13,
                input_names=list(bundle.inputs),
                output_names=bundle.output_names,
                do_constant_folding=True,
            )
        except Exception as exc:  # the exporter raises many types
            raise SpdyError(f"ONNX export of {bundle.spec} failed: {str(exc).splitlines()[0]}") from None
    return path


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


def output_to_module(onnx_path: str | Path, modules: set[str]) -> dict[str, str]:
    """Map each ONNX node output name to the module (from ``modules``) that produced it."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    mapping: dict[str, str] = {}
    for node in graph.node:
        module = module_of_node(node.name)
        if module in modules:
            for output in node.output:
                mapping[output] = module
    return mapping
