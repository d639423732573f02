"""What the integrations' commands share: the recipe options and progress lines."""

from __future__ import annotations

import os
import warnings

import click

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # sparseml 1.8 imports it


def recipe_options(command):
    """``--recipe``, ``--recipe-args``, ``--output-dir`` and ``--seed``."""
    for option in reversed([
        click.option("--recipe", required=True, help="SparseML recipe (from spdy-recipe generate)"),
        click.option("--recipe-args", default=None,
                     help='JSON overrides of recipe variables, e.g. \'{"num_epochs": 3}\''),
        click.option("-o", "--output-dir", required=True, help="folder for checkpoints, weights, report and ONNX"),
        click.option("--seed", default=0, show_default=True, type=int),
    ]):
        command = option(command)
    return command


def log(message: str) -> None:
    click.echo(message, err=True)
