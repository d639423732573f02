"""Load a recipe with SparseML for one model, and refuse it before training when its layers do not fit."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from spdy_recipes.emit.schedule import fewest_gradients, min_steps_per_epoch
from spdy_recipes.emit.validate import recipe_targets
from spdy_recipes.errors import SpdyError
from spdy_recipes.models.layers import parameters_by_name


@dataclass
class LoadedRecipe:
    """A recipe loaded for training: SparseML's manager and every layer's final sparsity."""

    path: Path
    manager: object  # sparseml ScheduledModifierManager
    targets: dict[str, float | None]  # None: constant pruning (keeps the zeros the weights have)

    @property
    def epochs(self) -> float:
        """Training length in epochs, as the recipe (after --recipe-args) sets it."""
        return float(self.manager.max_epochs)

    @property
    def quantizes(self) -> bool:
        """Whether the recipe holds a QuantizationModifier (quantization-aware training, an INT8 recipe's)."""
        return any("Quantization" in type(modifier).__name__ for modifier in self.manager.modifiers)

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps the recipe's epochs take."""
        return max(1, math.ceil(round(self.epochs * steps_per_epoch, 6)))

    def check_schedule(self, steps_per_epoch: int) -> None:
        """Raise before training when ``steps_per_epoch`` cannot carry the pruning schedule to its targets:
        SparseML updates masks only at step starts; AC/DC needs a whole-epoch update frequency; M-FAC
        needs ``num_grads`` steps before every mask update, the shortest gap included
        (``spdy_recipes.emit.schedule``)."""
        total = self.total_steps(steps_per_epoch)
        last_epoch = (total - 1) / steps_per_epoch
        for modifier in self.manager.modifiers:
            kind = type(modifier).__name__
            if not kind.endswith("PruningModifier") or kind == "ConstantPruningModifier":
                continue
            if kind == "ACDCPruningModifier" and modifier.update_frequency < 1:
                raise SpdyError(f"AC/DC's update frequency is {modifier.update_frequency:g} epochs after rounding; "
                                "it needs whole epochs (>= 1): raise pruning_update_frequency to at least 0.5")
            final = modifier.end_epoch - (modifier.update_frequency if kind == "ACDCPruningModifier" else 0)
            if last_epoch < final:
                raise SpdyError(f"{kind} reaches its targets at epoch {final:g}, but {self.epochs:g} epochs of "
                                f"{steps_per_epoch} steps start their last step at epoch {last_epoch:g}; "
                                f"train more steps per epoch (more data, a smaller batch) or more epochs")
            if kind == "MFACPruningModifier":
                grads = max(modifier.num_grads.values()) if isinstance(modifier.num_grads, dict) else modifier.num_grads
                schedule = (modifier.start_epoch, modifier.end_epoch, modifier.update_frequency)
                fewest = fewest_gradients(*schedule, steps_per_epoch, total)
                if fewest < grads:
                    needed = min_steps_per_epoch(*schedule, self.epochs, grads)
                    raise SpdyError(f"M-FAC collects num_grads={grads} gradients before each mask update, but at "
                                    f"{steps_per_epoch} steps per epoch one of its updates comes only {fewest} steps "
                                    f"after the one before; train at least {needed} steps per epoch, or lower "
                                    "num_grads with --recipe-args")


def parse_recipe_args(text: str | None) -> dict:
    """``--recipe-args`` as a dict: a JSON object such as '{"num_epochs": 3}'."""
    if not text:
        return {}
    try:
        args = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpdyError(f"bad --recipe-args {text!r}: not JSON ({exc.msg})") from None
    if not isinstance(args, dict):
        raise SpdyError(f"bad --recipe-args {text!r}: expected a JSON object like '{{\"num_epochs\": 3}}'")
    return args


def load_recipe(path: str | Path, recipe_args: dict, model: nn.Module, spec: str | None = None) -> LoadedRecipe:
    """Load ``path`` with ``recipe_args`` overrides; a SpdyError naming the missing layers if the
    recipe targets weights that ``model`` (unwrapped) does not have (``spec``: the model spec to name
    in the hint to generate a recipe for it)."""
    path = Path(path)
    if not path.is_file():
        raise SpdyError(f"recipe {path} does not exist")
    try:
        targets, manager = recipe_targets(str(path), recipe_args or None)
    except SpdyError as exc:
        raise SpdyError(f"recipe {path}: {exc}") from None
    check_layers(targets, model, path, spec)
    if any(type(modifier).__name__ == "OBSPruningModifier" for modifier in manager.modifiers):
        raise SpdyError(f"recipe {path} uses OBS, which needs a gradient sampler that these integrations do not "
                        f"provide; generate it with --method gmp, acdc or mfac")
    return LoadedRecipe(path, manager, targets)


def check_layers(targets: dict[str, float | None], model: nn.Module, path: Path, spec: str | None = None) -> None:
    """Raise unless every recipe layer is a parameter of ``model``, naming the ones that are not."""
    params = parameters_by_name(model)
    missing = [name for name in targets if name not in params]
    if not missing:
        return
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    example = next((name for name in params if name.endswith(".weight")), next(iter(params), "?"))
    raise SpdyError(f"recipe {path} names {len(missing)} layer(s) that {type(model).__name__} does not have: "
                    f"{shown} (its weights are named like {example}); generate the recipe for the model you train"
                    + (f" (spdy-recipe generate --model {spec})" if spec else ""))
