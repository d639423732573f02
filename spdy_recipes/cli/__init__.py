"""The ``spdy-recipe`` command line: options only. ``options`` declares the option groups once, each a
decorator that hands the command one request object; ``commands`` declares the commands, each a call into
``spdy_recipes.entrypoints``."""

from .commands import main

__all__ = ["main"]
