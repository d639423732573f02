"""SparseML recipe emission, validation and reading back."""

from .read import RecipeFile, read_recipe
from .recipe import METHODS, RecipeSettings, render_recipe
from .validate import validate_recipe

__all__ = ["METHODS", "RecipeFile", "RecipeSettings", "read_recipe", "render_recipe", "validate_recipe"]
