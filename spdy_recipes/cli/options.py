"""The command line's option groups, declared once. Each group is a decorator that adds its options to a
command and hands the command one object built from their values (a ModelRequest, a ProfileRequest, ...)
under one parameter name, so that a command's body only assembles requests and calls ``entrypoints``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..emit import METHODS, RecipeSettings
from ..errors import SpdyError, warn
from ..solve.planner import DEFAULT_QUANTILE

F = TypeVar("F", bound=Callable[..., Any])
MEASURING_OPTIONS = ("grid", "iterations", "warmup", "repeats", "design")


def option_group(name: str, options: list[Callable[[F], F]], build: Callable[..., object]) -> Callable[[F], F]:
    """A decorator adding ``options`` to a click command whose callback then receives ``name=build(**values)``
    in place of the options' own values."""
    def probe() -> None:  # a throwaway callback to read the options' parameter names from
        """Never called."""

    probed: Any = probe  # any callable: the options only attach their parameters to it
    for option in options:
        probed = option(probed)
    keys = [param.name for param in probed.__click_params__]

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values = {key: kwargs.pop(key) for key in keys}
            return command(**kwargs, **{name: build(**values)})

        # click keeps a command's options on this attribute; copy it, so the inner command's list stays its own
        wrapper.__click_params__ = list(getattr(command, "__click_params__", []))  # type: ignore[attr-defined]
        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]  # same callback, the group's options swapped for its request

    return decorate


def comma_list(value: str, cast: Callable[[str], Any], option: str, expected: str) -> tuple[Any, ...]:
    """``value`` split at commas, each part cast; SpdyError naming ``option`` on an empty or bad part."""
    try:
        return tuple(cast(part) for part in value.split(","))
    except ValueError:
        raise SpdyError(f"bad {option} {value!r}: expected {expected}") from None


# --- the model -------------------------------------------------------------------------------------------------

def _model_request(model_spec: str, input_shape: str | None, batch_size: int | None, num_classes: int | None,
                   weights: str | None = None) -> Any:
    from ..entrypoints import ModelRequest

    return ModelRequest(spec=model_spec, batch_size=batch_size, input_shape=input_shape, weights=weights,
                        num_classes=num_classes)


def model_request(weights: bool = True, for_recipe: bool = False) -> Callable[[F], F]:
    """``model``: the ModelRequest of --model, --input-shape, --batch-size, --num-classes (and --weights).
    ``for_recipe`` (verify): what the recipe records is the default, and --weights are the ones to prune."""
    recorded = " [default: the recipe's]" if for_recipe else ""
    return option_group("model", [
        click.option("--model", "model_spec", required=True,
                     help="the model the recipe is for (see generate)" if for_recipe else
                     "torchvision:NAME, sparseml:KEY, hf:DIR, yolov5:CFG or python:MODULE:CALLABLE"),
        click.option("--input-shape", default=None,
                     help="input shape without batch, e.g. 3,224,224 (hf: SEQ_LEN)" + recorded),
        click.option("--batch-size", default=None if for_recipe else 16, show_default=not for_recipe, type=int,
                     help="inputs per engine call, the batch the profile and the speedup are for" + recorded),
        click.option("--num-classes", default=None, type=int,
                     help="classes of a torchvision: or sparseml: model's head, as the training data has them "
                          + ("[default: the recipe's]" if for_recipe else "[default: the architecture's, 1000]")),
        *([click.option("--weights", default=None,
                        help="state_dict to prune [default: the architecture's own init]" if for_recipe else
                        "state_dict file to load (checked against the model)")] if weights else []),
    ], _model_request)


# --- the profile -----------------------------------------------------------------------------------------------

def _profile_request(hw: str, cores: int | None, grid: str, hw_root: str | None, backend: str,
                     iterations: int | None = None, warmup: int | None = None, repeats: int | None = None,
                     design: str | None = None, calibration_plans: int | None = None, precision: str = "fp32",
                     mask_type: str | None = None, baseline: str = "fp32", *, measures: bool = False) -> Any:
    """What a command asks of the profile store; a warning when it names measuring options for a stored one
    (not for ``measures``: the profile command measures for a named hardware too)."""
    from ..deployment import Deployment
    from ..profile.grid import parse_grid
    from ..profile.measure import TimingSettings
    from ..profile.store import ProfileRequest, hardware_root

    default = TimingSettings()
    timing = TimingSettings(
        iterations=default.iterations if iterations is None else iterations,
        warmup=default.warmup if warmup is None else warmup,
        repeats=default.repeats if repeats is None else repeats,
        design=design,
        calibration_plans=default.calibration_plans if calibration_plans is None else calibration_plans,
        deployment=Deployment(precision, mask_type).resolved(),
    )
    timing.check()
    if cores is not None and cores < 1:
        raise SpdyError(f"--cores must be at least 1, got {cores}")
    if not hw.strip():
        raise SpdyError("--hw must be 'local', a hardware NAME or a profile PATH, got an empty value")
    if hw != "local" and not measures:
        _warn_measuring_options_ignored(hw)
    if baseline == "int8" and precision != "int8":
        raise SpdyError("--baseline int8 needs --precision int8")
    return ProfileRequest(hw=hw, grid=parse_grid(grid), cores=cores, hw_root=hardware_root(hw_root), timing=timing,
                          backend=backend, baseline=baseline)


def _warn_measuring_options_ignored(hw: str) -> None:
    """Options that say how to measure a profile do nothing for a stored one: say so instead of ignoring them."""
    context = click.get_current_context(silent=True)
    if context is None or context.params.get("cluster_address") is not None:
        return  # (with a Ray cluster, a named hardware's missing profile is measured on its node with them)
    given = [f"--{name.replace('_', '-')}" for name in MEASURING_OPTIONS
             if name in context.params and context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        warn(f"{', '.join(given)} only {verb} to profiles measured here (--hw local) or on a Ray cluster's "
             f"node (--cluster); {hw} is a stored profile, used as it was measured")


MEASURING = [
    click.option("--iterations", default=5, show_default=True, type=int, help="analysed runs per level and repeat"),
    click.option("--warmup", default=2, show_default=True, type=int, help="warm-up runs per level and repeat"),
    click.option("--repeats", default=3, show_default=True, type=int, help="independent measurements per level"),
    click.option("--design", default=None, type=click.Choice(["uniform", "mixed"]),
                 help="profile runs: every kernel at one imposed sparsity per run, or real-zero models with every "
                      "layer at its own level (better predictions of SPDY's plans, but a slower fastest plan) "
                      "[default: uniform; mixed with --precision int8]"),
]
# how the profile's exports run (and the recipe's model: its mask type, and quantization for INT8)
DEPLOYMENT = [
    click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "int8"]),
                 help="time the model in fp32, or quantized to INT8 as SparseML 1.8 does (integer kernels: native "
                      "on AVX-512 VNNI CPUs, emulated and maybe slower on others)"),
    click.option("--mask-type", default=None, type=click.Choice(["unstructured", "block4"]),
                 help="pattern of the pruned zeros: one by one, or blocks of 4 input channels, which INT8 sparse "
                      "kernels skip [default: block4 with --precision int8, else unstructured]"),
]
BASELINE = click.option(
    "--baseline", default="fp32", show_default=True, type=click.Choice(["fp32", "int8"]),
    help="the dense model --speedup is over: fp32 (what runs today) or, with --precision int8, dense INT8")
CALIBRATION_PLANS = click.option(
    "--calibration-plans", default=12, show_default=True, type=int,
    help="random per-block plans (besides 4 uniform ones) timed with real engine calls to calibrate the table; "
         "0: none (an uncalibrated profile, predictions from the analysis alone)")


def profile_request(calibration_plans: bool = False, for_fix: bool = False) -> Callable[[F], F]:
    """``profile``: the ProfileRequest of --hw, --cores, --hw-root, --grid, --backend and the measuring options
    (--iterations, --warmup, --repeats, --design; and --calibration-plans for the ``profile`` command, which
    measures for a named hardware too, so its measuring options are never ignored). ``for_fix``
    (verify --fix): the profile to re-solve on, 'local' by default, without the measuring options."""
    return option_group("profile", [
        click.option("--hw", required=not for_fix, default="local" if for_fix else None, show_default=for_fix,
                     help="profile to re-solve on with --fix: 'local', a hardware NAME or a profile PATH" if for_fix
                     else "'local' (measure here, cached) or a hardware NAME to measure for (-o for a file)"
                     if calibration_plans else "'local' (measure here, cached), a hardware NAME, or a profile PATH"),
        click.option("--cores", default=None, type=int,
                     help="[default: the recipe's]" if for_fix else "cores the engine uses [default: all here]"
                     if calibration_plans else "cores the engine uses [default: all here; a named hardware's own "
                     "count]"),
        click.option("--hw-root", default=None, help="folder of named hardware [default: recipes/hardware]"),
        click.option("--grid", default="spdy", show_default=True,
                     help="grid of a local profile measured for --fix" if for_fix else
                     "spdy, spdy:N or a list like 0,0.5,0.9"),
        click.option("--backend", default="deepsparse", show_default=True, help="timing backend that measures"),
        *([] if for_fix else MEASURING),
        *([] if for_fix else [CALIBRATION_PLANS, *DEPLOYMENT] if calibration_plans else [*DEPLOYMENT, BASELINE]),
    ], functools.partial(_profile_request, measures=calibration_plans))


# --- what the solver is told -----------------------------------------------------------------------------------

def _solve_settings(include: tuple[str, ...], exclude: tuple[str, ...], quantile: float,
                    sensitivity: str | None = None) -> Any:
    from ..solve.settings import SolveSettings

    return SolveSettings(include=include, exclude=exclude, sensitivity=sensitivity, quantile=quantile)


def solve_settings(sensitivity: bool = True) -> Callable[[F], F]:
    """``solve``: the SolveSettings of --include, --exclude, --quantile (and --sensitivity)."""
    return option_group("solve", [
        click.option("--include", multiple=True,
                     help="regex of layers to prune (repeatable) [default: all Conv/Linear]"),
        click.option("--exclude", multiple=True, help="regex of layers to keep dense (repeatable)"),
        click.option("--quantile", default=DEFAULT_QUANTILE, show_default=True, type=float,
                     help="plan on this quantile of the repeated timings (0.5 = median; higher = safer)"),
        *([click.option("--sensitivity", default=None, help="sensitivity table JSON [default: SPDY's prior]")]
          if sensitivity else []),
    ], _solve_settings)


# --- SPDY's search -----------------------------------------------------------------------------------------------

def _search_request(calib: str | None, calib_samples: int, database: str, search_budget: str, seed: int,
                    device: str, holdout: int = 0, heldout_data: str | None = None) -> Any:
    from ..entrypoints import SearchRequest
    from ..sensitivity.setup import CalibrationSettings

    if device != "auto":  # a bad name or a GPU torch does not see: one error before any work
        from ..device import resolve_device

        resolve_device(device)
    if not calib:
        if device != "auto":
            warn(f"--device {device} applies to SPDY's search, which runs with --calib only; ignored")
        return None
    calibration = CalibrationSettings(source=calib, samples=calib_samples, holdout=holdout, seed=seed,
                                      database=database, heldout_source=heldout_data)
    return SearchRequest(calibration, search_budget, device)


def search_request(heldout: bool = False) -> Callable[[F], F]:
    """``search``: the SearchRequest of --calib, --calib-samples, --database, --search-budget, --seed, --device
    (and --holdout, --heldout-data); None without --calib."""
    return option_group("search", [
        click.option("--calib", default=None,
                     help="calibration data, which turns on SPDY's search: an image folder, a .pt/.npy tensor "
                          "file, a .txt file (one sample per line), a saved dataset folder, builtin:images "
                          "(12 photos), builtin:objects (the photos and 40 CIFAR images), builtin:imagenet "
                          "(20 labelled ImageNet images) or builtin:text"),
        click.option("--calib-samples", default=64, show_default=True, type=int, help="calibration samples"),
        click.option("--database", default="obs", show_default=True, type=click.Choice(["obs", "magnitude"]),
                     help="per-level layer weights: magnitude mask + least-squares re-fit (obs), or the mask alone"),
        click.option("--search-budget", default="150", show_default=True,
                     help="candidates to score (e.g. 300) or minutes (e.g. 10m)"),
        click.option("--seed", default=0, show_default=True, type=int, help="seeds data sampling and the search"),
        click.option("--device", default="auto", show_default=True,
                     help="where the torch work runs (layer inputs, Hessians, database, search scoring, re-fit, "
                          "evaluation): auto (a GPU when torch sees one), cpu, cuda or cuda:N"),
        *([click.option("--holdout", default=64, show_default=True, type=int,
                        help="held-out samples (never seen by the search) for the final evaluation, drawn from "
                             "--heldout-data when given (more samples than its images repeat them as crops)"),
           click.option("--heldout-data", default=None,
                        help="take the held-out samples from this source instead of a disjoint split of --calib "
                             "(e.g. builtin:imagenet: 20 labelled ImageNet images, reported as top-1)")]
          if heldout else []),
    ], _search_request)


# --- Ray ----------------------------------------------------------------------------------------------------------

def _cluster_settings(workers: int | None, cluster_address: str | None) -> Any:
    from ..cluster import ClusterSettings

    return ClusterSettings(workers=workers, address=cluster_address)


def cluster_settings(recipes: bool = False) -> Callable[[F], F]:
    """``cluster``: the ClusterSettings of --workers and --cluster (neither: no Ray). ``recipes``: regenerate's
    wording (one Ray task per recipe)."""
    if recipes:
        workers = "build the recipes as Ray tasks on N worker processes (a local Ray instance, or the --cluster / " \
                  "$RAY_ADDRESS cluster); the same bytes for any N"
        cluster = "join this running Ray cluster (host:port of its head, or auto) and build the recipes on its workers"
    else:
        workers = ("run the database's layers and the search's candidates on N Ray worker processes (a local Ray "
                   "instance, or N actors on the --cluster / $RAY_ADDRESS cluster); same recipe for any N")
        cluster = ("join this running Ray cluster (host:port of its head, or auto): its workers build the database "
                   "and score the search, and a node started with the resource hw:NAME profiles --hw NAME when its "
                   "profile is missing or stale")
    return option_group("cluster", [
        click.option("--workers", default=None, type=int, help=workers),
        click.option("--cluster", "cluster_address", default=None, help=cluster),
    ], _cluster_settings)


# --- verification and the recipe ------------------------------------------------------------------------------

def _verify_settings(tolerance: float, rounds: int, max_rounds: int, verify_here: bool | None = True) -> Any:
    from ..entrypoints import VerifySettings

    return VerifySettings(enabled=verify_here, tolerance=tolerance, rounds=rounds, max_rounds=max_rounds)


def verify_settings(toggle: bool = False) -> Callable[[F], F]:
    """``verify``: the VerifySettings of --tolerance, --rounds, --max-rounds (and --verify/--no-verify)."""
    return option_group("verify", [
        click.option("--tolerance", default=0.0, show_default=True, type=float,
                     help="accept a measured speedup down to target x (1 - tolerance); 1 reports without judging"),
        click.option("--rounds", default=10, show_default=True, type=int,
                     help="timing rounds at least (dense and pruned alternate, a block of calls lasting about 60 "
                          "ms each per round); more until the 95% interval is within +-2%, 60 s at most"),
        click.option("--max-rounds", default=4, show_default=True, type=int,
                     help="solve-and-measure rounds at most (verification, verify --fix)"),
        *([click.option("--verify/--no-verify", "verify_here", default=None,
                        help="measure the pruned model here and re-solve until it meets the target without "
                             "overshooting [default: verify with --hw local, not with named hardware or a profile "
                             "file]")] if toggle else []),
    ], _verify_settings)


def _recipe_settings(method: str, epochs: float, init_lr: float | None, final_lr: float) -> RecipeSettings:
    return RecipeSettings(method=method, epochs=epochs, init_lr=init_lr, final_lr=final_lr)


recipe_settings = option_group("recipe", [
    click.option("--method", type=click.Choice(METHODS), default="gmp", show_default=True,
                 help="SparseML pruning modifier the recipe trains with (README: Using the recipe)"),
    click.option("--epochs", default=20.0, show_default=True, type=float, help="training epochs the recipe runs"),
    click.option("--init-lr", default=None, type=float,
                 help="recipe's starting learning rate [default: 5e-5 for hf: (AdamW fine-tuning), else 0.01 (SGD)]"),
    click.option("--final-lr", default=0.0, show_default=True, type=float,
                 help="learning rate the recipe's schedule ends at"),
], _recipe_settings)


def evaluation_requests(command: F) -> F:
    """compare and tradeoff: ``model``, ``profile``, ``solve`` (no --sensitivity: the search scores the errors)
    and ``search`` (with the held-out data)."""
    for group in (search_request(heldout=True), solve_settings(sensitivity=False), profile_request(),
                  model_request()):
        command = group(command)
    return command


def name_list(value: str) -> tuple[str, ...]:
    """The comma-separated names in ``value``, stripped, each once, in order (empty: none)."""
    return tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))


def path_or_none(value: str | None) -> Path | None:
    return Path(value) if value else None
