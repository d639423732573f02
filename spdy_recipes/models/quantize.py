"""INT8 exports as DeepSparse runs them: SparseML 1.8's quantization-aware wrappers, their observers calibrated
on the model's own inputs, then SparseML's exporter turning the fake-quantized graph into integer operations.

SparseML 1.8 has two quantization modifiers behind the one ``!QuantizationModifier`` tag. The new one
(``scheme: deepsparse``) fails to initialise with torch 2.14 (``'QConfig' object has no attribute
'quantization_scheme'``: torch's ``QConfig`` now has empty ``__slots__``); a recipe with a key only the legacy
class has (``exclude_module_types``) selects the legacy class, which works, in SparseML's trainer too. Both
this module and the recipes we write use that form (``QUANTIZATION_MODIFIER``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import warnings
from pathlib import Path

import torch
from torch import nn

from ..deployment import EXCLUDED_MODULE_TYPES
from ..errors import SpdyError, first_line
from .call import takes_keywords

# ONNX operations that compute a Conv or a Linear in integers (what convert_qat produces and DeepSparse runs)
INTEGER_OPS = frozenset({"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger"})
CALIBRATION_PASSES = 4  # forward passes of the model's own batch that set the observers' ranges
QUANTIZATION_MODIFIER = f"""modifiers:
  - !QuantizationModifier
    start_epoch: 0.0
    exclude_module_types: {list(EXCLUDED_MODULE_TYPES)}
"""


def quantized_module(module: nn.Module, inputs: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``module`` with SparseML's quantization-aware wrappers (conv-BN-ReLU fused, weights and
    activations fake-quantized to 8 bits) and observers calibrated on ``CALIBRATION_PASSES`` forward passes of
    ``inputs``; ``module`` is left as it was. Raises SpdyError with SparseML's first line when it cannot
    prepare the model."""
    from sparseml.pytorch.optim import ScheduledModifierManager
    from sparseml.pytorch.utils import LoggerManager

    prepared = copy.deepcopy(module)
    prepared.train()  # SparseML fuses conv-BN for training; in eval mode torch folds BN and the count check fails
    try:
        with _quiet():
            ScheduledModifierManager.from_yaml(QUANTIZATION_MODIFIER).apply(
                prepared, epoch=0.0, loggers=LoggerManager(log_python=False))  # no ./sparse_logs
    except Exception as exc:  # SparseML raises many types
        raise SpdyError(f"SparseML could not prepare the model for INT8: {first_line(exc)}") from None
    prepared.eval()
    try:
        with torch.no_grad(), _quiet():
            for _ in range(CALIBRATION_PASSES):
                _forward(prepared, inputs)
    except Exception as exc:  # a forward that fails under fake quantization raises many types
        raise SpdyError(f"the model quantized for INT8 cannot run its own batch: {first_line(exc)}") from None
    prepared.apply(torch.ao.quantization.disable_observer)  # the ranges stay those of the calibration passes
    return prepared


def apply_quantization_structure(module: nn.Module, recipe: str) -> None:
    """Give ``module`` (in place) the quantization-aware structure that ``recipe`` (YAML text or a path) leaves
    at the end of training: SparseML's own ``ScheduledModifierManager.apply_structure`` at epoch infinity, which
    applies only structural modifiers (the ``QuantizationModifier``: conv-BN fusion, fake-quantization wrappers),
    so that a state_dict saved after quantization-aware training loads into it. Raises SpdyError with SparseML's
    first line when it cannot apply the recipe."""
    from sparseml.pytorch.optim import ScheduledModifierManager
    from sparseml.pytorch.utils import LoggerManager

    module.train()  # as in training: SparseML fuses conv-BN for training
    try:
        with _quiet():
            ScheduledModifierManager.from_yaml(recipe).apply_structure(
                module, epoch=math.inf, loggers=LoggerManager(log_python=False))
    except Exception as exc:  # SparseML raises many types
        raise SpdyError(f"SparseML could not apply the recipe's quantization to the model: {first_line(exc)}") from None
    module.eval()


def holds_quantization(state: dict[str, torch.Tensor]) -> bool:
    """Whether a state_dict was saved from a fake-quantized model (its FakeQuantize scales and zero points)."""
    return any(".fake_quant" in key or "activation_post_process" in key for key in state)


def is_quantized(module: nn.Module) -> bool:
    """Whether ``module`` holds fake-quantization (quantization-aware training ran on it, or
    ``quantized_module`` prepared it)."""
    return any(type(child).__name__ == "FakeQuantize" for child in module.modules())


def export_int8(module: nn.Module, inputs: dict[str, torch.Tensor], path: str | Path, opset: int,
                output_names: list[str] | None = None) -> Path:
    """Export ``module`` in INT8 to ``path`` with SparseML's ``ModuleExporter`` (``convert_qat=True``:
    QuantizeLinear/DequantizeLinear pairs become QLinearConv and QLinearMatMul; the TorchScript exporter,
    ``dynamo=False``), the graph's inputs named as ``inputs`` and its outputs as ``output_names`` when given.
    A model that quantization-aware training already quantized (``is_quantized``: a trained INT8 recipe's) is
    exported as it is, any other is first prepared by ``quantized_module``. Raises SpdyError when SparseML cannot
    prepare or export the model."""
    from sparseml.pytorch.utils import ModuleExporter

    path = Path(path)
    prepared = module if is_quantized(module) else quantized_module(module, inputs)
    sample = dict(inputs) if takes_keywords(module) else tuple(inputs.values())
    try:
        with _quiet():
            ModuleExporter(prepared, str(path.parent)).export_onnx(
                sample, name=path.name, opset=opset, convert_qat=True, dynamo=False, input_names=list(inputs),
                **({"output_names": output_names} if output_names else {}))
    except Exception as exc:
        raise SpdyError(f"INT8 export failed: {first_line(exc)}") from None
    return path


def integer_modules(onnx_path: str | Path, output_module: dict[str, str]) -> set[str]:
    """The modules (values of ``output_module``, ONNX output name -> module path) that an integer operation
    (``INTEGER_OPS``) of the graph computes."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return {output_module[out] for node in graph.node if node.op_type in INTEGER_OPS
            for out in node.output if out in output_module}


def check_integer(onnx_path: str | Path, output_module: dict[str, str], layers: dict[str, str]) -> list[str]:
    """The layers (weight name -> module path, of ``layers``) that no integer operation computes in the INT8
    export at ``onnx_path``: the engine runs them in fp32. Raises SpdyError when none of them became an
    integer operation (the export did not quantize at all)."""
    integer = integer_modules(onnx_path, output_module)
    left = [name for name, module in layers.items() if module not in integer]
    if len(left) == len(layers):
        raise SpdyError("the INT8 export holds no integer Conv or MatMul: SparseML quantized none of the "
                        f"{len(layers)} prunable layers")
    return left


def _forward(module: nn.Module, inputs: dict[str, torch.Tensor]) -> None:
    if takes_keywords(module):
        module(**inputs)
    else:
        module(*inputs.values())


@contextlib.contextmanager
def _quiet():
    """SparseML's modifier logs and torch's quantization warnings, kept off the command's output."""
    logger = logging.getLogger("sparseml")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
