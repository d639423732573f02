"""Model loading and the prunable layers of a model."""

from .layers import PrunableLayer, prunable_layers, select_names
from .spec import ModelBundle, load_model

__all__ = ["ModelBundle", "PrunableLayer", "load_model", "prunable_layers", "select_names"]
