"""Read back a recipe this tool wrote: its metadata, its schedule settings and its per-layer targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import SpdyError, first_line
from .recipe import METHODS, RecipeSettings
from .validate import recipe_targets


class _TagIgnoringLoader(yaml.SafeLoader):
    """A safe loader that reads SparseML's ``!Modifier`` tags as plain mappings."""


_TagIgnoringLoader.add_multi_constructor("!", lambda loader, _, node: loader.construct_mapping(node))


@dataclass(kw_only=True)
class RecipeFile:
    """A recipe as written: metadata, schedule, and every layer's final sparsity as SparseML reads it."""

    path: Path
    metadata: dict
    settings: RecipeSettings
    targets: dict[str, float | None]
    levels: dict[str, float] = field(default_factory=dict)  # layer -> its prune_level_NN_sparsity variable

    @property
    def planned(self) -> dict[str, float]:
        """Every pruned layer's planned final sparsity: its target, or for a constant-pruning recipe (whose
        layers keep the zeros they start with) the level variable it was planned at."""
        return {name: (self.levels.get(name, 0.0) if value is None else float(value))
                for name, value in self.targets.items()}


def read_recipe(path: str | Path) -> RecipeFile:
    """Load ``path`` with SparseML and parse its metadata and variables; one-line errors when malformed."""
    path = Path(path)
    if path.is_dir():
        raise SpdyError(f"recipe {path} is a folder; give a recipe file (.yaml or .md)")
    if not path.is_file():
        raise SpdyError(f"recipe {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpdyError(f"malformed recipe {path}: not UTF-8 text ({first_line(exc)})") from None
    try:
        data = yaml.load(text, Loader=_TagIgnoringLoader)  # noqa: S506 - a safe loader subclass
    except yaml.YAMLError as exc:
        raise SpdyError(f"malformed recipe {path}: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise SpdyError(f"malformed recipe {path}: not a YAML mapping")
    targets, _ = recipe_targets(text)
    metadata = data.get("__metadata__") or {}
    method = metadata.get("method")
    if method not in METHODS:
        raise SpdyError(f"recipe {path} was not written by spdy-recipes (its metadata names no method)")
    settings = RecipeSettings(
        method=method,
        epochs=float(data.get("num_epochs", 20.0)),
        init_lr=float(data.get("init_lr", 0.01)),
        final_lr=float(data.get("final_lr", 0.0)),
        pruning_start_fraction=data.get("pruning_start_fraction"),
        pruning_end_fraction=float(data.get("pruning_end_fraction", 0.75)),
        update_frequency=data.get("pruning_update_frequency"),
        init_sparsity=float(data.get("init_sparsity", 0.05)),
        num_grads=data.get("num_grads"),
        fisher_block_size=data.get("fisher_block_size"),
    )
    return RecipeFile(path=path, metadata=metadata, settings=settings, targets=targets, levels=_level_sparsities(data))


def _level_sparsities(data: dict) -> dict[str, float]:
    """The ``prune_level_NN_sparsity`` variable of every layer of the NN-th pruning modifier (this tool writes
    one modifier per level, in level order)."""
    levels = {}
    for index, modifier in enumerate(data.get("pruning_modifiers") or []):
        value = data.get(f"prune_level_{index:02d}_sparsity")
        params = modifier.get("params") if isinstance(modifier, dict) else None
        if isinstance(value, (int, float)) and isinstance(params, list):
            levels.update({str(name): float(value) for name in params})
    return levels
