"""SparseML recipe emission and validation."""

from .recipe import METHODS, RecipeSettings, render_recipe
from .validate import validate_recipe

__all__ = ["METHODS", "RecipeSettings", "render_recipe", "validate_recipe"]
