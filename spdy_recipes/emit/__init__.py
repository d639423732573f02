"""SparseML recipe emission, validation and reading back."""

from .read import RecipeFile, read_recipe
from .recipe import METHODS, RecipeSettings, default_init_lr, render_recipe
from .validate import validate_recipe

__all__ = [
    "METHODS", "RecipeFile", "RecipeSettings", "default_init_lr", "read_recipe", "render_recipe", "validate_recipe",
]
