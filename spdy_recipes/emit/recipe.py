"""Render a per-layer sparsity profile as a SparseML 1.8 YAML recipe.

Layers are grouped by sparsity level, one pruning modifier per level (the one form every SparseML
pruning modifier accepts, AC/DC included). Dense layers are omitted. Epochs, learning rate and every
level's sparsity are top-level variables, so ``--recipe-args`` can override them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from ..deployment import EXCLUDED_MODULE_TYPES, FP32, Deployment
from ..errors import SpdyError

METHODS = ("gmp", "acdc", "mfac", "obs", "constant")
BLOCK4_FISHER_BLOCK_SIZE = 48  # the default 50, rounded to whole blocks of 4 (SparseML requires it for block4)

_MODIFIER = {
    "gmp": "GMPruningModifier",
    "acdc": "ACDCPruningModifier",
    "mfac": "MFACPruningModifier",
    "obs": "OBSPruningModifier",
    "constant": "ConstantPruningModifier",
}


@dataclass(kw_only=True)
class RecipeSettings:
    """Training schedule written into the recipe (all overridable as recipe variables)."""

    method: str = "gmp"
    epochs: float = 20.0
    init_lr: float | None = None  # None: the model's default (``default_init_lr``), which ``for_model`` fills
    final_lr: float = 0.0
    pruning_start_fraction: float | None = None  # default: 0.0, or 0.1 for mfac/obs (gradient warm-up)
    pruning_end_fraction: float = 0.75
    update_frequency: float | None = None  # default: 1 epoch for acdc, else 0.5
    init_sparsity: float = 0.05
    num_grads: int | None = None  # mfac/obs: default 64 / 1024
    fisher_block_size: int | None = None  # mfac/obs: default 50 (SparseML's 2000 needs params x 2000 floats)

    def for_model(self, model_spec: str) -> RecipeSettings:
        """These settings with ``init_lr`` filled from ``default_init_lr(model_spec)`` where it is None."""
        return self if self.init_lr is not None else replace(self, init_lr=default_init_lr(model_spec))

    def resolved(self) -> ResolvedRecipeSettings:
        """Fill method-dependent defaults. Raises SpdyError when ``init_lr`` is None (see ``for_model``)."""
        method = self.method
        if self.init_lr is None:
            raise SpdyError("the recipe's init_lr is unset: fill the model's default with for_model()")
        return ResolvedRecipeSettings(
            method=method,
            epochs=float(self.epochs),
            init_lr=self.init_lr,
            final_lr=self.final_lr,
            pruning_start_fraction=(
                self.pruning_start_fraction
                if self.pruning_start_fraction is not None
                else (0.1 if method in ("mfac", "obs") else 0.0)
            ),
            pruning_end_fraction=self.pruning_end_fraction,
            update_frequency=self.update_frequency or (1.0 if method == "acdc" else 0.5),
            init_sparsity=self.init_sparsity,
            num_grads=self.num_grads or (1024 if method == "obs" else 64),
            fisher_block_size=self.fisher_block_size or 50,  # memory is params x block floats
        )


@dataclass(kw_only=True, frozen=True)
class ResolvedRecipeSettings:
    """``RecipeSettings`` with every default filled (``RecipeSettings.resolved``): what the recipe is written from."""

    method: str
    epochs: float
    init_lr: float
    final_lr: float
    pruning_start_fraction: float
    pruning_end_fraction: float
    update_frequency: float
    init_sparsity: float
    num_grads: int
    fisher_block_size: int


def default_init_lr(model_spec: str) -> float:
    """The recipe's starting learning rate when none is given: AdamW fine-tuning rate for transformers
    (``hf:``), SGD rate for the rest."""
    return 5e-5 if model_spec.startswith("hf:") else 0.01


def fixed(value: float, decimals: int = 4) -> str:
    """A float in fixed-point form (PyYAML reads ``5e-1`` as a string), always with a decimal point."""
    text = f"{value:.{decimals}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def render_recipe(pruned: dict[str, float], settings: RecipeSettings, metadata: dict, header: list[str],
                  deployment: Deployment = FP32) -> str:
    """The recipe text for ``pruned`` (layer name -> sparsity in (0, 1)) in ``deployment``'s mask type, with
    quantization-aware training after pruning for INT8 (``_quantization``); see the module docstring. Raises
    SpdyError when the epochs leave no room for QAT after pruning."""
    resolved = settings.resolved()
    deployment = deployment.resolved()
    if deployment.mask == "block4" and resolved.method in ("mfac", "obs"):  # SparseML: blocks of 4 per Fisher block
        if settings.fisher_block_size is None:
            resolved = replace(resolved, fisher_block_size=BLOCK4_FISHER_BLOCK_SIZE)
        elif resolved.fisher_block_size % 4:
            raise SpdyError(f"block-4 pruning needs a fisher_block_size divisible by 4, got "
                            f"{resolved.fisher_block_size}")
    levels = sorted(set(pruned.values()))
    groups = {level: [name for name, s in pruned.items() if s == level] for level in levels}
    lines = [f"# {line}" for line in header]
    lines += ["version: 1.1.0", "", "__metadata__:"]
    lines += [f"  {key}: {json.dumps(metadata[key])}" for key in sorted(metadata)]
    lines += ["", *_variables(resolved, groups)]
    if deployment.precision == "int8":
        lines += _quantization_variables(resolved)
    lines += ["", *_training_modifiers(), "", "pruning_modifiers:"]
    for index, level in enumerate(levels):
        lines += _pruning_modifier(resolved, f"prune_level_{index:02d}_sparsity", groups[level],
                                   deployment.mask)
    if deployment.precision == "int8":
        lines += _quantization()
    return "\n".join(lines) + "\n"


def qat_epochs(epochs: float) -> float:
    """Epochs of quantization-aware training at the end of the schedule: SparseML's recipe template's 5 from 15
    epochs on, else 2 (``sparseml.pytorch.recipe_template``)."""
    return 5.0 if epochs >= 15 else 2.0


def check_qat_room(epochs: float, pruning_end_fraction: float) -> None:
    """SpdyError when pruning would still run once quantization-aware training starts (the last
    ``qat_epochs(epochs)`` epochs): INT8 recipes quantize the pruned model."""
    qat = qat_epochs(epochs)
    if epochs <= qat:
        raise SpdyError(f"an INT8 recipe trains {qat:g} epochs of quantization-aware training after pruning: give "
                        f"--epochs above {qat:g}, not {epochs:g}")
    if pruning_end_fraction * epochs > epochs - qat:
        raise SpdyError(f"pruning ends at epoch {pruning_end_fraction * epochs:g}, after quantization-aware "
                        f"training would start (epoch {epochs - qat:g} of {epochs:g}: the last {qat:g} epochs); "
                        "give more epochs (--epochs)")


def _quantization_variables(settings: ResolvedRecipeSettings) -> list[str]:
    qat = qat_epochs(settings.epochs)
    check_qat_room(settings.epochs, settings.pruning_end_fraction)
    return [f"num_qat_epochs: {fixed(qat)}  # quantization-aware training at the end; observers and BN frozen "
            "halfway through it"]


def _quantization() -> list[str]:
    """SparseML's legacy quantization modifier (the form that works with torch 2.14, ``models.quantize``), as
    its recipe template places it: after pruning, observers disabled and batch-norm statistics frozen halfway
    through QAT."""
    return [
        "",
        "quantization_modifiers:",
        "  - !QuantizationModifier",
        "    start_epoch: eval(num_epochs - num_qat_epochs)",
        "    disable_quantization_observer_epoch: eval(num_epochs - num_qat_epochs / 2)",
        "    freeze_bn_stats_epoch: eval(num_epochs - num_qat_epochs / 2)",
        f"    exclude_module_types: {json.dumps(list(EXCLUDED_MODULE_TYPES))}",
    ]


def _variables(settings: ResolvedRecipeSettings, groups: dict[float, list[str]]) -> list[str]:
    lines = [
        f"num_epochs: {fixed(settings.epochs)}",
        f"init_lr: {fixed(settings.init_lr, 8)}",
        f"final_lr: {fixed(settings.final_lr, 8)}",
        f"pruning_start_fraction: {fixed(settings.pruning_start_fraction)}",
        f"pruning_end_fraction: {fixed(settings.pruning_end_fraction)}",
        f"pruning_update_frequency: {fixed(settings.update_frequency)}",
    ]
    if settings.method in ("gmp", "mfac", "obs"):
        lines.append(f"init_sparsity: {fixed(settings.init_sparsity)}")
    if settings.method in ("mfac", "obs"):
        lines += [f"num_grads: {settings.num_grads}", f"fisher_block_size: {settings.fisher_block_size}"]
    for index, (level, names) in enumerate(groups.items()):
        lines.append(f"prune_level_{index:02d}_sparsity: {fixed(level)}  # {len(names)} layer(s)")
    return lines


def _training_modifiers() -> list[str]:
    return [
        "training_modifiers:",
        "  - !EpochRangeModifier",
        "    start_epoch: 0.0",
        "    end_epoch: eval(num_epochs)",
        "",
        "  - !LearningRateFunctionModifier",
        "    lr_func: linear",
        "    init_lr: eval(init_lr)",
        "    final_lr: eval(final_lr)",
        "    start_epoch: 0.0",
        "    end_epoch: eval(num_epochs)",
    ]


def _pruning_modifier(settings: ResolvedRecipeSettings, variable: str, names: list[str],
                      mask_type: str = "unstructured") -> list[str]:
    method = settings.method
    lines = [f"  - !{_MODIFIER[method]}", "    params:"]
    lines += [f"      - {json.dumps(name)}" for name in names]
    start = "eval(pruning_start_fraction * num_epochs)"
    end = "eval(pruning_end_fraction * num_epochs)"
    if method == "constant":
        return lines + ["    start_epoch: 0.0", "    end_epoch: -1.0", ""]
    if method == "acdc":  # AC/DC needs whole epochs
        return lines + [
            f"    compression_sparsity: eval({variable})",
            "    start_epoch: eval(round(pruning_start_fraction * num_epochs))",
            "    end_epoch: eval(round(pruning_end_fraction * num_epochs))",
            "    update_frequency: eval(round(pruning_update_frequency))",
            "    global_sparsity: False",
            "    leave_enabled: True",
            f"    mask_type: {mask_type}",
            "",
        ]
    lines += [
        "    init_sparsity: eval(init_sparsity)",
        f"    final_sparsity: eval({variable})",
        f"    start_epoch: {start}",
        f"    end_epoch: {end}",
        "    update_frequency: eval(pruning_update_frequency)",
        "    leave_enabled: True",
        "    inter_func: cubic",
        f"    mask_type: {mask_type}",
    ]
    if method in ("mfac", "obs"):
        lines += ["    global_sparsity: False", "    num_grads: eval(int(num_grads))",
                  "    fisher_block_size: eval(int(fisher_block_size))"]
    return lines + [""]
