"""The ``spdy-recipe`` command line."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path

import click

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # sparseml 1.8 imports it

from . import __version__  # noqa: E402
from .emit import METHODS, RecipeSettings  # noqa: E402
from .errors import SpdyError  # noqa: E402
from .grid import parse_grid  # noqa: E402


def _fail_cleanly(command):
    """Turn SpdyError into ``error: ...`` on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SpdyError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper


def model_options(command):
    """--model, --input-shape, --batch-size."""
    options = [
        click.option("--model", "model_spec", required=True,
                     help="torchvision:NAME, hf:DIR, yolov5:CFG or python:MODULE:CALLABLE"),
        click.option("--input-shape", default=None, help="input shape without batch, e.g. 3,224,224 (hf: SEQ_LEN)"),
        click.option("--batch-size", default=16, show_default=True, type=int),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def profile_options(command):
    """--hw, --cores, --grid, --hw-root and the timing settings."""
    options = [
        click.option("--hw", required=True, help="'local' (measure here, cached), a hardware NAME, or a profile PATH"),
        click.option("--cores", default=None, type=int, help="cores the engine uses [default: all]"),
        click.option("--grid", default="spdy", show_default=True, help="spdy, spdy:N or a list like 0,0.5,0.9"),
        click.option("--hw-root", default=None, help="folder of named hardware [default: recipes/hardware]"),
        click.option("--iterations", default=10, show_default=True, type=int, help="timed runs per level"),
        click.option("--warmup", default=3, show_default=True, type=int, help="warm-up runs per level"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _load(model_spec, weights, input_shape, batch_size):
    from .models import load_model
    from .models.spec import parse_input_shape

    return load_model(model_spec, batch_size, parse_input_shape(input_shape), weights)


def _request(hw, cores, grid, hw_root, iterations, warmup):
    from .pipeline import ProfileRequest, default_cores
    from .profile.store import hardware_root

    if iterations < 1 or warmup < 0:
        raise SpdyError("--iterations must be at least 1 and --warmup at least 0")
    available = default_cores()
    cores = cores or available
    if not 1 <= cores <= available:
        raise SpdyError(f"--cores must be between 1 and {available}, got {cores}")
    return ProfileRequest(hw, cores, parse_grid(grid), hardware_root(hw_root), iterations, warmup)


def _refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise SpdyError(f"{path} already exists (use --force to overwrite)")


@click.group()
@click.version_option(__version__, prog_name="spdy-recipe")
def main() -> None:
    """Hardware-aware SparseML pruning recipes from SPDY per-layer sparsity profiles."""


@main.command()
@model_options
@profile_options
@click.option("-o", "--output", default=None, help="profile file [default: recipes/hardware/HW/<model>-bs<B>-c<C>.json]")
@click.option("--force", is_flag=True, help="overwrite an existing profile")
@_fail_cleanly
def profile(model_spec, input_shape, batch_size, hw, cores, grid, hw_root, iterations, warmup, output, force):
    """Measure per-layer latency at every sparsity level in DeepSparse and save a hardware profile.

    Only the architecture matters: the engine imposes each sparsity on freshly initialised weights.
    """
    from .profile import save_profile
    from .profile.measure import measure_profile
    from .profile.store import LOCAL, is_path, profile_filename
    from .pipeline import obtain_profile

    if is_path(hw):
        raise SpdyError("profile --hw takes 'local' or a hardware NAME; use -o for a file path")
    bundle = _load(model_spec, None, input_shape, batch_size)
    request = _request(hw, cores, grid, hw_root, iterations, warmup)
    if hw == LOCAL and output is None:
        profile_data, path = obtain_profile(bundle, request)
    else:
        path = Path(output) if output else request.hw_root / hw / profile_filename(bundle, request.cores)
        _refuse_existing(path, force)
        profile_data = measure_profile(bundle, request.grid, request.cores, hw, iterations, warmup)
        save_profile(profile_data, path)
    click.echo(f"profile of {len(profile_data.layers)} layers x {len(profile_data.grid)} levels: dense "
               f"{profile_data.dense_ms:.2f} ms; wrote {path}")


@main.command()
@model_options
@profile_options
@click.option("--weights", default=None, help="state_dict file to load (checked against the model)")
@click.option("--speedup", required=True, type=float, help="target end-to-end speedup over dense, e.g. 2.0")
@click.option("--method", type=click.Choice(METHODS), default="gmp", show_default=True)
@click.option("-o", "--output", required=True, help="recipe file to write (.yaml or .md)")
@click.option("--epochs", default=20.0, show_default=True, type=float)
@click.option("--init-lr", default=0.01, show_default=True, type=float)
@click.option("--final-lr", default=0.0, show_default=True, type=float)
@click.option("--include", multiple=True, help="regex of layers to prune (repeatable) [default: all Conv/Linear]")
@click.option("--exclude", multiple=True, help="regex of layers to keep dense (repeatable)")
@click.option("--sensitivity", default=None, help="sensitivity table JSON [default: SPDY's prior]")
@click.option("--force", is_flag=True, help="overwrite an existing recipe")
@_fail_cleanly
def generate(model_spec, input_shape, batch_size, hw, cores, grid, hw_root, iterations, warmup, weights,
             speedup, method, output, epochs, init_lr, final_lr, include, exclude, sensitivity, force):
    """Profile (or load a profile), solve SPDY for --speedup, and write a SparseML recipe."""
    from .models import prunable_layers
    from .pipeline import obtain_profile, solve, write_recipe

    path = Path(output)
    _refuse_existing(path, force)
    if epochs <= 0:
        raise SpdyError(f"--epochs must be positive, got {epochs}")
    bundle = _load(model_spec, weights, input_shape, batch_size)
    request = _request(hw, cores, grid, hw_root, iterations, warmup)
    profile_data, profile_path = obtain_profile(bundle, request)
    plan = solve(profile_data, speedup, include, exclude, sensitivity)
    settings = RecipeSettings(method=method, epochs=epochs, init_lr=init_lr, final_lr=final_lr)
    model_layers = {layer.name for layer in prunable_layers(bundle.module)}
    write_recipe(path, plan, profile_data, profile_path, settings, model_layers, sensitivity)
    click.echo(f"predicted speedup {plan.predicted_speedup:.3f}x (target {speedup:.3f}x, best reachable "
               f"{plan.max_speedup:.3f}x): {len(plan.pruned)} of {len(plan.sparsities)} layers pruned; wrote {path}")


@main.command(name="solve")
@click.option("--profile", "profile_path", required=True, help="profile JSON file")
@click.option("--speedup", required=True, type=float)
@click.option("--include", multiple=True, help="regex of layers to prune (repeatable)")
@click.option("--exclude", multiple=True, help="regex of layers to keep dense (repeatable)")
@click.option("--sensitivity", default=None, help="sensitivity table JSON [default: SPDY's prior]")
@_fail_cleanly
def solve_command(profile_path, speedup, include, exclude, sensitivity):
    """Solve the SPDY DP on a stored profile and print the per-layer result."""
    from .pipeline import solve
    from .profile import load_profile
    from .report import plan_report

    profile_data = load_profile(profile_path)
    click.echo(plan_report(solve(profile_data, speedup, include, exclude, sensitivity), profile_data))


@main.command(name="inspect")
@click.argument("path")
@_fail_cleanly
def inspect_command(path):
    """Summarise a profile (.json) or a recipe (.yaml/.md)."""
    from .report import inspect_file

    click.echo(inspect_file(path))
