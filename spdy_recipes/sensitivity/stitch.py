"""Swapping layer weights in place: database levels or any given weights, and back to dense."""

from __future__ import annotations

import torch
from torch import nn

from ..models.layers import parameters_by_name
from .database import Database


class Stitcher:
    """Puts weights into a model without copying the model; remembers the dense weights to restore them."""

    def __init__(self, model: nn.Module, database: Database) -> None:
        self.database = database
        params = parameters_by_name(model)
        self.params = {name: params[name] for name in database.layer_names}
        self.dense = {name: param.detach().clone() for name, param in self.params.items()}
        self.levels = {name: 0 for name in self.params}

    def load(self, weights: dict[str, torch.Tensor]) -> None:
        """Set the named layers to ``weights`` (the levels they came from are forgotten)."""
        with torch.no_grad():
            for name, weight in weights.items():
                self.params[name].copy_(weight)
                self.levels[name] = -1

    def apply_levels(self, levels: dict[str, int]) -> None:
        """Set each named layer to its database level, touching only layers whose level changes."""
        with torch.no_grad():
            for name, level in levels.items():
                if self.levels[name] != level:
                    self.params[name].copy_(self.dense[name] if level == 0 else self.database.weight(name, level))
                    self.levels[name] = level

    def weights_changed(self) -> None:
        """The layers were modified in place (e.g. re-fitted): no layer is at a database level any more."""
        self.levels = {name: -1 for name in self.params}

    def restore(self) -> None:
        """Every layer dense again."""
        self.apply_levels({name: 0 for name in self.params})
