"""The ``spdy-recipe`` command line."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

import click

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # sparseml 1.8 imports it

from . import __version__  # noqa: E402
from .emit import METHODS, RecipeSettings, default_init_lr  # noqa: E402
from .errors import SpdyError, fail_cleanly, warn  # noqa: E402
from .files import refuse_overwrite  # noqa: E402
from .solve.planner import DEFAULT_QUANTILE  # noqa: E402


def _options(*options):
    def apply(command):
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def _log(message: str) -> None:
    click.echo(message, err=True)


model_options = _options(
    click.option("--model", "model_spec", required=True,
                 help="torchvision:NAME, sparseml:KEY, hf:DIR, yolov5:CFG or python:MODULE:CALLABLE"),
    click.option("--input-shape", default=None, help="input shape without batch, e.g. 3,224,224 (hf: SEQ_LEN)"),
    click.option("--batch-size", default=16, show_default=True, type=int),
    click.option("--num-classes", default=None, type=int,
                 help="classes of a torchvision: or sparseml: model's head, as the training data has them "
                      "[default: the architecture's, 1000]"),
)

profile_options = _options(
    click.option("--hw", required=True, help="'local' (measure here, cached), a hardware NAME, or a profile PATH"),
    click.option("--cores", default=None, type=int,
                 help="cores the engine uses [default: all here; a named hardware's own count]"),
    click.option("--grid", default="spdy", show_default=True, help="spdy, spdy:N or a list like 0,0.5,0.9"),
    click.option("--hw-root", default=None, help="folder of named hardware [default: recipes/hardware]"),
    click.option("--iterations", default=5, show_default=True, type=int, help="analysed runs per level and repeat"),
    click.option("--warmup", default=2, show_default=True, type=int, help="warm-up runs per level and repeat"),
    click.option("--repeats", default=3, show_default=True, type=int, help="independent measurements per level"),
    click.option("--design", default="uniform", show_default=True, type=click.Choice(["uniform", "mixed"]),
                 help="profile runs: every kernel at one imposed sparsity per run, or real-zero models with every "
                      "layer at its own level (better predictions of SPDY's plans, but a slower fastest plan)"),
    click.option("--backend", default="deepsparse", show_default=True, help="timing backend that measures"),
)

solve_options = _options(
    click.option("--include", multiple=True, help="regex of layers to prune (repeatable) [default: all Conv/Linear]"),
    click.option("--exclude", multiple=True, help="regex of layers to keep dense (repeatable)"),
    click.option("--sensitivity", default=None, help="sensitivity table JSON [default: SPDY's prior]"),
    click.option("--quantile", default=DEFAULT_QUANTILE, show_default=True, type=float,
                 help="plan on this quantile of the repeated timings (0.5 = median; higher = safer)"),
)

calibration_options = _options(
    click.option("--calib", default=None,
                 help="calibration data, which turns on SPDY's search: an image folder, a .pt/.npy tensor file, "
                      "a .txt file (one sample per line), a saved dataset folder, builtin:images (12 photos), "
                      "builtin:objects (the photos and 40 CIFAR images), builtin:imagenet (20 labelled ImageNet "
                      "images) or builtin:text"),
    click.option("--calib-samples", default=64, show_default=True, type=int, help="calibration samples"),
    click.option("--database", default="obs", show_default=True, type=click.Choice(["obs", "magnitude"]),
                 help="per-level layer weights: magnitude mask + least-squares re-fit (obs), or the mask alone"),
    click.option("--search-budget", default="150", show_default=True,
                 help="candidates to score (e.g. 300) or minutes (e.g. 10m)"),
    click.option("--seed", default=0, show_default=True, type=int, help="seeds data sampling and the search"),
)

# compare and tradeoff: which layers, which quantile, the calibration and held-out data, and the weights scored
evaluation_options = _options(
    click.option("--include", multiple=True, help="regex of layers to prune (repeatable) [default: all Conv/Linear]"),
    click.option("--exclude", multiple=True, help="regex of layers to keep dense (repeatable)"),
    click.option("--quantile", default=DEFAULT_QUANTILE, show_default=True, type=float,
                 help="plan on this quantile of the repeated timings"),
    calibration_options,
    click.option("--holdout", default=64, show_default=True, type=int,
                 help="held-out samples (never seen by the search) for the final evaluation, drawn from "
                      "--heldout-data when given (more samples than its images repeat them as crops)"),
    click.option("--heldout-data", default=None,
                 help="take the held-out samples from this source instead of a disjoint split of --calib "
                      "(e.g. builtin:imagenet: 20 labelled ImageNet images, reported as top-1)"),
    click.option("--weights", default=None, help="state_dict file to load (checked against the model)"),
)

verify_options = _options(
    click.option("--tolerance", default=0.0, show_default=True, type=float,
                 help="accept a measured speedup down to target x (1 - tolerance); 1 reports without judging"),
    click.option("--rounds", default=10, show_default=True, type=int,
                 help="timing rounds at least (dense and pruned alternate, a block of calls lasting about 60 ms "
                      "each per round); more until the 95% interval is within +-2%, 60 s at most"),
    click.option("--max-rounds", default=4, show_default=True, type=int, help="solve-and-measure rounds when fixing"),
)


def _load(model_spec, weights, input_shape, batch_size, num_classes):
    from .entrypoints import ModelRequest

    return ModelRequest(model_spec, batch_size, input_shape, weights, num_classes).load()


def _request(hw, cores, grid, hw_root, backend, timing=None):
    """What a command asks of the profile store (``timing``: a TimingSettings, default TimingSettings())."""
    from .profile.grid import parse_grid
    from .profile.measure import TimingSettings
    from .profile.store import ProfileRequest, hardware_root

    timing = timing or TimingSettings()
    timing.check()
    if hw != "local":
        _warn_measuring_options_ignored(hw)
    return ProfileRequest(hw, parse_grid(grid), cores, hardware_root(hw_root), timing, backend)


MEASURING_OPTIONS = ("grid", "iterations", "warmup", "repeats", "design")


def _warn_measuring_options_ignored(hw: str) -> None:
    """Options that say how to measure a profile do nothing for a stored one: say so instead of ignoring them."""
    context = click.get_current_context(silent=True)
    if context is None:
        return
    given = [f"--{name}" for name in MEASURING_OPTIONS
             if name in context.params and context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        warn(f"{', '.join(given)} only apply to profiles measured here (--hw local); {hw} is a stored profile, "
             f"used as it was measured")


def _comma_list(value: str, cast, option: str, expected: str) -> tuple:
    """``value`` split at commas, each part cast; SpdyError naming ``option`` on an empty or bad part."""
    try:
        return tuple(cast(part) for part in value.split(","))
    except ValueError:
        raise SpdyError(f"bad {option} {value!r}: expected {expected}") from None


def _timing(iterations, warmup, repeats, design="uniform", calibration_plans=None):
    from .profile.measure import TimingSettings

    plans = TimingSettings.calibration_plans if calibration_plans is None else calibration_plans
    return TimingSettings(iterations, warmup, repeats, design, plans)


def _terminated(signum, frame) -> None:
    """SIGTERM (``kill``, a CI timeout) unwinds like Ctrl-C, so that half-written files are removed."""
    print("error: terminated", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


class _Commands(click.Group):
    """The command group. Bad command-line usage (an unknown option, a missing or invalid value) is one
    ``error:`` line pointing at ``--help``, exit status 2, like every other error of the tool."""

    def main(self, *args, **kwargs):
        signal.signal(signal.SIGTERM, _terminated)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.UsageError as exc:
            hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
            print(f"error: {exc.format_message()}{hint}", file=sys.stderr, flush=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            print(f"error: {exc.format_message()}", file=sys.stderr, flush=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            print("error: aborted", file=sys.stderr, flush=True)
            sys.exit(1)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="spdy-recipe")
def main() -> None:
    """Hardware-aware SparseML pruning recipes from SPDY per-layer sparsity profiles."""


@main.command()
@model_options
@profile_options
@click.option("--instance-type", default=None, help="recorded in a new named hardware's description")
@click.option("-o", "--output", default=None,
              help="profile file [default: recipes/hardware/HW/<model>-bs<B>-c<C>.json]")
@click.option("--force", is_flag=True, help="measure again and overwrite an existing profile")
@click.option("--calibration-plans", default=12, show_default=True, type=int,
              help="random per-block plans (besides 4 uniform ones) timed with real engine calls to calibrate the "
                   "table; 0: none (an uncalibrated profile, predictions from the analysis alone)")
@fail_cleanly
def profile(model_spec, input_shape, batch_size, num_classes, hw, cores, grid, hw_root, iterations, warmup, repeats,
            design, backend, instance_type, output, force, calibration_plans):
    """Measure per-layer latency at every sparsity level and save a hardware profile.

    Only the architecture matters: the engine imposes each sparsity on freshly initialised weights. Then the
    table is calibrated on real engine calls of real-zero plans (README: How the numbers are made).
    """
    from .profile import save_profile
    from .profile.backends import engine_label, get_backend
    from .profile.hardware import host_differences, read_description, write_description
    from .profile.measure import measure_profile
    from .profile.store import LOCAL, check_cores, is_path, local_cache_path, profile_filename

    if is_path(hw):
        raise SpdyError("profile --hw takes 'local' or a hardware NAME; use -o for a file path")
    bundle = _load(model_spec, None, input_shape, batch_size, num_classes)
    request = _request(hw, cores, grid, hw_root, backend,
                       _timing(iterations, warmup, repeats, design, calibration_plans))
    measurer = get_backend(request.backend)
    cores = check_cores(cores or measurer.max_cores(), measurer.max_cores())
    if output:
        path = Path(output)
    elif hw == LOCAL:
        path = local_cache_path(bundle, cores, request, measurer)
        if path.is_file() and not force:
            click.echo(f"cached profile {path} (use --force to measure again)")
            return
    else:
        folder = request.hw_root / hw
        host, engine = measurer.describe_host(), engine_label(measurer)
        description = read_description(folder)
        differences = host_differences(description, host, engine, description.get("engine"))
        if differences:
            warn(f"hardware {hw!r} is described as another machine ({'; '.join(differences)}); "
                 f"profiles in {folder} will mix machines")
        path = folder / profile_filename(bundle, cores)
        if not description:
            write_description(folder, hw, instance_type, host, engine)
    refuse_overwrite(path, force)
    profile_data = measure_profile(bundle, request.grid, cores, hw, measurer, request.timing)
    save_profile(profile_data, path)
    flags = profile_data.flags
    click.echo(f"profile of {len(profile_data.layers)} layers x {len(profile_data.grid)} levels x "
               f"{profile_data.repeats} repeats: dense {profile_data.dense_ms:.2f} ms (call overhead "
               f"{profile_data.call_overhead_ms:.2f} ms); {len(flags['non_monotone'])} non-monotone layer(s), "
               f"{len(flags['noisy_levels'])} noisy level(s); {profile_data.calibration_label()}; wrote {path}")


@main.command()
@model_options
@profile_options
@solve_options
@calibration_options
@verify_options
@click.option("--weights", default=None, help="state_dict file to load (checked against the model)")
@click.option("--speedup", required=True, type=float, help="target end-to-end speedup over dense, e.g. 2.0")
@click.option("--method", type=click.Choice(METHODS), default="gmp", show_default=True)
@click.option("-o", "--output", required=True, help="recipe file to write (.yaml or .md)")
@click.option("--epochs", default=20.0, show_default=True, type=float)
@click.option("--init-lr", default=None, type=float,
              help="recipe's starting learning rate [default: 5e-5 for hf: (AdamW fine-tuning), else 0.01 (SGD)]")
@click.option("--final-lr", default=0.0, show_default=True, type=float)
@click.option("--verify/--no-verify", "verify_here", default=None,
              help="measure the pruned model here and re-solve until it meets the target without overshooting "
                   "[default: verify with --hw local, not with named hardware or a profile file]")
@click.option("--report", "report_dir", default=None,
              help="also write the HTML report (see report) to this folder; when verifying, the plan's layers are "
                   "analysed once more for their in-context times")
@click.option("--force", is_flag=True, help="overwrite an existing recipe (and report)")
@fail_cleanly
def generate(model_spec, input_shape, batch_size, num_classes, hw, cores, grid, hw_root, iterations, warmup, repeats,
             design, backend, include, exclude, sensitivity, quantile, calib, calib_samples, database, search_budget,
             seed, tolerance, rounds, max_rounds, weights, speedup, method, output, epochs, init_lr, final_lr,
             verify_here, report_dir, force):
    """Profile (or load a profile), solve SPDY for --speedup, verify here (default with --hw local) and
    write a SparseML recipe.

    With --calib, the per-layer errors come from SPDY's search scored on the calibration data."""
    from .entrypoints import GenerateRequest, ModelRequest, SearchRequest, VerifySettings
    from .entrypoints import generate as generate_recipe
    from .solve.settings import SolveSettings

    request = GenerateRequest(
        model=ModelRequest(model_spec, batch_size, input_shape, weights, num_classes),
        profile=_request(hw, cores, grid, hw_root, backend, _timing(iterations, warmup, repeats, design)),
        speedup=speedup,
        output=Path(output),
        recipe=RecipeSettings(method=method, epochs=epochs, final_lr=final_lr,
                              init_lr=init_lr if init_lr is not None else default_init_lr(model_spec)),
        solve=SolveSettings(include, exclude, sensitivity, quantile),
        search=SearchRequest(calib, calib_samples, 0, seed, database, search_budget) if calib else None,
        verify=VerifySettings(verify_here, tolerance, rounds, max_rounds),
        force=force,
        report=Path(report_dir) if report_dir else None,
    )
    click.echo(generate_recipe(request, _log).summary())


@main.command(name="compare")
@model_options
@profile_options
@evaluation_options
@click.option("--speedup", required=True, type=float, help="target end-to-end speedup over dense")
@click.option("--rounds", default=10, show_default=True, type=int, help="timing rounds per method (0: do not measure)")
@click.option("--match", default="predicted", show_default=True, type=click.Choice(["predicted", "measured"]),
              help="compare at SPDY's predicted latency, or re-aim every method until its measured speedup is "
                   "within 1% of the target (5 measurements at most)")
@click.option("--global-refit", default="0", show_default=True,
              help="Adam steps re-fitting all kept weights against the dense model (SPDY's gAP) before "
                   "evaluating; a comma list (0,200) evaluates each regime on the same allocations")
@fail_cleanly
def compare(model_spec, input_shape, batch_size, num_classes, hw, cores, grid, hw_root, iterations, warmup, repeats,
            design, backend, include, exclude, quantile, calib, calib_samples, database, search_budget, seed, holdout,
            heldout_data, weights, speedup, rounds, match, global_refit):
    """SPDY against uniform, global magnitude, LAMP and ERK at the same speed.

    Prints per method: predicted and measured speedup (with its 95% interval), calibration loss, and
    held-out loss and accuracy after one-shot pruning (and global re-fitting); then which methods' measured
    speeds differ by more than the noise."""
    from .entrypoints import ModelRequest, SearchRequest
    from .entrypoints.compare import CompareRequest, compare as compare_flow
    from .solve.settings import SolveSettings

    if not calib:
        raise SpdyError("compare needs --calib (calibration data to search and score on)")
    refit_steps = _comma_list(global_refit, int, "--global-refit", "step counts like 0 or 0,200")
    request = CompareRequest(
        model=ModelRequest(model_spec, batch_size, input_shape, weights, num_classes),
        profile=_request(hw, cores, grid, hw_root, backend, _timing(iterations, warmup, repeats, design)),
        speedup=speedup,
        search=SearchRequest(calib, calib_samples, holdout, seed, database, search_budget, heldout_data),
        solve=SolveSettings(include, exclude, None, quantile),
        rounds=rounds, match=match, refit_steps=refit_steps,
    )
    click.echo(compare_flow(request, _log).table())


@main.command(name="tradeoff")
@model_options
@profile_options
@evaluation_options
@click.option("--speedups", required=True, help="target speedups over dense, comma-separated, e.g. 1.2,1.5,2,2.5")
@click.option("--methods", default=",".join(("uniform", "global_magnitude", "lamp", "erk")), show_default=True,
              help="baselines to compare SPDY with (comma-separated; empty: SPDY alone)")
@click.option("--rounds", default=0, show_default=True, type=int,
              help="timing rounds per method and target, to measure every plan here (0: predicted only)")
@click.option("-o", "--output", default=None, help="folder for tradeoff.csv and tradeoff.png")
@click.option("--force", is_flag=True, help="replace an existing trade-off in the folder")
@fail_cleanly
def tradeoff_command(model_spec, input_shape, batch_size, num_classes, hw, cores, grid, hw_root, iterations, warmup,
                     repeats, design, backend, include, exclude, quantile, calib, calib_samples, database,
                     search_budget, seed, holdout, heldout_data, weights, speedups, methods, rounds, output, force):
    """The speed/accuracy curve: SPDY and the baselines at each of --speedups, with predicted (and with
    --rounds, measured) speedup, overall sparsity and, with --calib, calibration and held-out loss after
    one-shot pruning. Reuses the cached profile, database and searches."""
    from .entrypoints import ModelRequest, SearchRequest
    from .entrypoints.tradeoff import TradeoffRequest, tradeoff
    from .solve.settings import SolveSettings

    targets = _comma_list(speedups, float, "--speedups", "numbers like 1.2,1.5,2")
    request = TradeoffRequest(
        model=ModelRequest(model_spec, batch_size, input_shape, weights, num_classes),
        profile=_request(hw, cores, grid, hw_root, backend, _timing(iterations, warmup, repeats, design)),
        speedups=targets,
        search=SearchRequest(calib, calib_samples, holdout, seed, database, search_budget, heldout_data)
        if calib else None,
        solve=SolveSettings(include, exclude, None, quantile),
        rounds=rounds,
        methods=tuple(dict.fromkeys(m.strip() for m in methods.split(",") if m.strip())),
        output=Path(output) if output else None,
        force=force,
    )
    result = tradeoff(request, _log)
    click.echo(result.table())
    if output:
        click.echo(f"wrote {Path(output) / 'tradeoff.csv'} and {Path(output) / 'tradeoff.png'}")


@main.command(name="verify")
@click.argument("recipe_path", metavar="RECIPE")
@click.option("--model", "model_spec", required=True, help="the model the recipe is for (see generate)")
@click.option("--weights", default=None, help="state_dict to prune (default: the architecture's own init)")
@click.option("--input-shape", default=None, help="input shape without batch [default: the recipe's]")
@click.option("--batch-size", default=None, type=int, help="[default: the recipe's]")
@click.option("--num-classes", default=None, type=int, help="classes of the model's head [default: the recipe's]")
@click.option("--hw", default="local", show_default=True,
              help="profile to re-solve on with --fix: 'local', a hardware NAME or a profile PATH")
@click.option("--cores", default=None, type=int, help="[default: the recipe's]")
@click.option("--hw-root", default=None, help="folder of named hardware [default: recipes/hardware]")
@click.option("--grid", default="spdy", show_default=True, help="grid of a local profile measured for --fix")
@click.option("--backend", default="deepsparse", show_default=True, help="timing backend that measures")
@verify_options
@click.option("--fix", is_flag=True,
              help="when short (or more than 5% over), re-solve and rewrite the recipe until it meets the target "
                   "without overshooting")
@click.option("--trained", default=None,
              help="weights trained with RECIPE (file or folder): check their sparsity and measure them as they are")
@click.option("--report", "report_dir", default=None,
              help="write the HTML report of RECIPE with this measurement (and its layers' in-context times) to "
                   "this folder, replacing a report there")
@fail_cleanly
def verify_command(recipe_path, model_spec, weights, input_shape, batch_size, num_classes, hw, cores, hw_root, grid,
                   backend, tolerance, rounds, max_rounds, fix, trained, report_dir):
    """Prune the model one-shot to RECIPE's sparsities (or load --trained weights) and measure its speedup
    against the dense model here."""
    from .entrypoints import ModelRequest, VerifyRequest, VerifySettings, verify_recipe

    request = VerifyRequest(Path(recipe_path), ModelRequest(model_spec, batch_size, input_shape, weights, num_classes),
                            _request(hw, cores, grid, hw_root, backend), VerifySettings(True, tolerance, rounds,
                                                                                          max_rounds), fix, trained,
                            Path(report_dir) if report_dir else None)
    outcome = verify_recipe(request, _log, click.echo)
    if outcome.fixed:
        final = outcome.fixed.final
        click.echo(f"fixed {recipe_path}: solved for {final.plan.solve_speedup:.3f}x, measured "
                   f"{final.measurement.describe()} (target {outcome.target:.3f}x)")
    if outcome.report:
        click.echo(f"wrote {outcome.report}")


@main.command(name="solve")
@click.option("--profile", "profile_path", required=True, help="profile JSON file")
@click.option("--speedup", required=True, type=float)
@solve_options
@fail_cleanly
def solve_command(profile_path, speedup, include, exclude, sensitivity, quantile):
    """Solve the SPDY DP on a stored profile and print the per-layer result."""
    from .solve.settings import SolveSettings, solve
    from .profile import load_profile
    from .report import plan_report

    profile_data = load_profile(profile_path)
    settings = SolveSettings(include, exclude, sensitivity, quantile)
    click.echo(plan_report(solve(profile_data, speedup, settings), profile_data))


@main.command(name="regenerate")
@click.option("--manifest", default="recipes/manifest.yaml", show_default=True)
@click.option("--check", is_flag=True, help="write nothing; exit 1 listing every recipe that is stale or would change")
@fail_cleanly
def regenerate_command(manifest, check):
    """Rebuild every recipe of the manifest from the stored hardware profiles (deterministic)."""
    from .entrypoints.regenerate import regenerate

    outcomes = regenerate(manifest, check, _log)
    problems = [o for o in outcomes if (not o.ok_for_check if check else o.status == "error")]
    for outcome in problems:
        click.echo(f"{outcome.status}: {outcome.path}" + (f" ({outcome.detail})" if outcome.detail else ""))
    counts = {status: sum(o.status == status for o in outcomes) for status in
              ("current", "written", "changed", "missing", "error")}
    click.echo(", ".join(f"{n} {status}" for status, n in counts.items() if n) + f" of {len(outcomes)} recipe(s)")
    if problems:
        sys.exit(1)


@main.command(name="report")
@click.argument("recipe_path", metavar="RECIPE")
@click.option("-o", "--output", required=True, help="folder to write index.html and its PNG plots to")
@click.option("--profile", "profile_path", default=None,
              help="the profile the recipe was solved on [default: the one its metadata names, in --hw-root or "
                   "the local profile cache]")
@click.option("--hw-root", default=None, help="folder of named hardware [default: recipes/hardware]")
@click.option("--force", is_flag=True, help="replace an existing report in the folder")
@fail_cleanly
def report_command(recipe_path, output, profile_path, hw_root, force):
    """Write an HTML report of RECIPE: per-layer sparsity and time, each layer's sweep, the layers left dense
    and why, the search's loss curve, predicted against measured speedup, and the provenance."""
    from .entrypoints.report import ReportRequest, report
    from .profile.store import hardware_root

    page = report(ReportRequest(Path(recipe_path), Path(output), Path(profile_path) if profile_path else None,
                                hardware_root(hw_root), force))
    click.echo(f"wrote {page}")


@main.command(name="inspect")
@click.argument("path")
@fail_cleanly
def inspect_command(path):
    """Summarise a profile (.json) or a recipe (.yaml/.md)."""
    from .report import inspect_file

    click.echo(inspect_file(path))
