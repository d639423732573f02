"""The final per-layer sparsity of a trained model against the recipe's targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from spdy_recipes.errors import SpdyError
from spdy_recipes.files import atomic_write_json
from spdy_recipes.models.oneshot import weight_sparsity
from spdy_recipes.verify import SPARSITY_TOLERANCE as TOLERANCE


@dataclass(frozen=True)
class LayerSparsity:
    name: str
    target: float | None  # None: constant pruning, no target of its own
    reached: float

    @property
    def missed(self) -> bool:
        return self.target is not None and abs(self.reached - self.target) > TOLERANCE


def sparsity_report(model: nn.Module, targets: dict[str, float | None]) -> list[LayerSparsity]:
    """Every recipe layer's fraction of zeros in ``model`` (unwrapped) next to its target."""
    reached = weight_sparsity(model, list(targets))
    return [LayerSparsity(name, targets[name], reached[name]) for name in targets]


def format_report(rows: list[LayerSparsity]) -> str:
    """A table: layer, target, reached, and a mark on layers that missed."""
    width = max((len(row.name) for row in rows), default=5)
    lines = [f"{'layer':<{width}}  target  reached"]
    for row in rows:
        target = "  hold" if row.target is None else f"{row.target:6.4f}"
        lines.append(f"{row.name:<{width}}  {target}  {row.reached:7.4f}{'  MISSED' if row.missed else ''}")
    missed = sum(row.missed for row in rows)
    lines.append(f"{len(rows) - missed}/{len(rows)} layers at their target (within {TOLERANCE:.1%})")
    return "\n".join(lines)


def save_report(rows: list[LayerSparsity], path: str | Path, recipe: Path, extra: dict) -> None:
    """Write the report as JSON, atomically."""
    layers = {row.name: {"target": row.target, "reached": round(row.reached, 6)} for row in rows}
    atomic_write_json(path, {"recipe": str(recipe), "tolerance": TOLERANCE, "layers": layers,
                             "missed": [row.name for row in rows if row.missed], **extra})


def require_targets(rows: list[LayerSparsity]) -> None:
    """Raise unless every layer reached its target."""
    missed = [row for row in rows if row.missed]
    if missed:
        shown = ", ".join(f"{row.name} {row.reached:.4f} (target {row.target:.4f})" for row in missed[:3])
        raise SpdyError(f"{len(missed)} layer(s) missed the recipe's sparsity by more than {TOLERANCE:.1%}: {shown}"
                        + (" ..." if len(missed) > 3 else ""))
