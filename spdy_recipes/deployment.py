"""How a model runs in the engine: its precision and the pattern of its pruned zeros. Shared vocabulary of the
export (``models.export``), the profile that records it and the recipe that trains for it."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SpdyError

PRECISIONS = ("fp32", "int8")
MASK_TYPES = ("unstructured", "block4")
# module types INT8 leaves in fp32, in the profile's export and in the recipe's QAT alike; naming one is also
# what selects SparseML 1.8's legacy quantization modifier, the one that works with torch 2.14
EXCLUDED_MODULE_TYPES = ("LayerNorm",)


@dataclass(frozen=True)
class Deployment:
    """How the model runs in the engine: ``precision`` (``fp32``, or ``int8``: SparseML's quantization, exported
    with integer ops, ``models.quantize``) and the pruning ``mask_type`` (``unstructured``, or ``block4``: blocks
    of 4 input channels, what DeepSparse's INT8 sparse kernels skip). ``mask_type`` None: the default for the
    precision (``default_mask_type``)."""

    precision: str = "fp32"
    mask_type: str | None = None

    def resolved(self, names: tuple[str, str] = ("--precision", "--mask-type")) -> Deployment:
        """This deployment with its mask type filled; SpdyError for an unknown precision or mask type, naming
        them as ``names`` does (the options, or where a file holds them)."""
        if self.precision not in PRECISIONS:
            raise SpdyError(f"{names[0]} must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.mask not in MASK_TYPES:
            raise SpdyError(f"{names[1]} must be one of {', '.join(MASK_TYPES)}, got {self.mask!r}")
        return Deployment(self.precision, self.mask)

    @property
    def mask(self) -> str:
        """The mask type, the precision's default where none is given (``default_mask_type``)."""
        return self.mask_type or default_mask_type(self.precision)

    @property
    def label(self) -> str:
        """``fp32, unstructured`` or ``int8, block4``."""
        resolved = self.resolved()
        return f"{resolved.precision}, {resolved.mask_type}"


def default_mask_type(precision: str) -> str:
    """``block4`` for INT8 (DeepSparse's INT8 sparse kernels skip blocks of 4, on every ISA: SparseML's own
    recipe template switches to block4 with quantization for VNNI CPUs), else ``unstructured``."""
    return "block4" if precision == "int8" else "unstructured"


FP32 = Deployment("fp32", "unstructured")
