"""The ``spdy-recipe`` commands: each declares its options (``cli.options``) and calls one flow of
``spdy_recipes.entrypoints``."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

import click

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # sparseml 1.8 imports it

from .. import __version__  # noqa: E402
from ..errors import SpdyError, fail_cleanly  # noqa: E402
from .options import (  # noqa: E402
    cluster_settings,
    comma_list,
    evaluation_requests,
    model_request,
    name_list,
    path_or_none,
    profile_request,
    recipe_settings,
    search_request,
    solve_settings,
    verify_settings,
)


def _log(message: str) -> None:
    click.echo(message, err=True)


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
@fail_cleanly
@model_request(weights=False)
@profile_request(calibration_plans=True)
@click.option("--instance-type", default=None, help="recorded in a new named hardware's description")
@click.option("-o", "--output", default=None,
              help="profile file [default: recipes/hardware/HW/<model>-bs<B>-c<C>.json]")
@click.option("--force", is_flag=True, help="measure again and overwrite an existing profile")
@click.option("--cluster", "cluster_address", default=None,
              help="measure --hw NAME on the node of this Ray cluster started with the resource hw:NAME, and store "
                   "the profile in recipes/hardware/NAME/ here")
def profile(model, profile, instance_type, output, force, cluster_address):
    """Measure per-layer latency at every sparsity level and save a hardware profile.

    Only the architecture matters: the engine imposes each sparsity on freshly initialised weights. Then the
    table is calibrated on real engine calls of real-zero plans (README: How the numbers are made).
    """
    from ..entrypoints.profile import MeasureRequest, measure_and_save

    outcome = measure_and_save(MeasureRequest(model=model, profile=profile, output=path_or_none(output),
                                              force=force, instance_type=instance_type, cluster=cluster_address))
    click.echo(outcome.summary())


@main.command()
@fail_cleanly
@model_request()
@profile_request()
@solve_settings()
@search_request()
@cluster_settings()
@verify_settings(toggle=True)
@recipe_settings
@click.option("--speedup", required=True, type=float,
              help="target end-to-end speedup over dense (fp32 for an INT8 profile), e.g. 2.0")
@click.option("-o", "--output", required=True, help="recipe file to write (.yaml)")
@click.option("--report", "report_dir", default=None,
              help="also write the HTML report (see report) to this folder; when verifying, the plan's layers are "
                   "analysed once more for their in-context times")
@click.option("--force", is_flag=True, help="overwrite an existing recipe (and report)")
def generate(model, profile, solve, search, cluster, verify, recipe, speedup, output, report_dir, force):
    """Profile (or load a profile), solve SPDY for --speedup, verify here (default with --hw local) and
    write a SparseML recipe.

    With --calib, the per-layer errors come from SPDY's search scored on the calibration data."""
    from ..entrypoints import GenerateRequest
    from ..entrypoints import generate as generate_recipe

    request = GenerateRequest(model=model, profile=profile, speedup=speedup, output=Path(output), recipe=recipe,
                              solve=solve, search=search, verify=verify, force=force, report=path_or_none(report_dir),
                              cluster=cluster)
    click.echo(generate_recipe(request, _log).summary())


@main.command(name="compare")
@fail_cleanly
@evaluation_requests
@cluster_settings()
@click.option("--speedup", required=True, type=float, help="target end-to-end speedup over dense")
@click.option("--rounds", default=10, show_default=True, type=int, help="timing rounds per method (0: do not measure)")
@click.option("--match", default="predicted", show_default=True, type=click.Choice(["predicted", "measured"]),
              help="compare at SPDY's predicted latency, or re-aim every method until its measured speedup is "
                   "within 1% of the target (5 measurements at most)")
@click.option("--global-refit", default="0", show_default=True,
              help="Adam steps re-fitting all kept weights against the dense model (SPDY's gAP) before "
                   "evaluating; a comma list (0,200) evaluates each regime on the same allocations")
def compare(model, profile, solve, search, cluster, speedup, rounds, match, global_refit):
    """SPDY against uniform, global magnitude, LAMP and ERK at the same speed.

    Prints per method: predicted and measured speedup (with its 95% interval), calibration loss, and
    held-out loss and accuracy after one-shot pruning (and global re-fitting); then which methods' measured
    speeds differ by more than the noise."""
    from ..entrypoints.compare import CompareRequest
    from ..entrypoints.compare import compare as compare_flow

    if search is None:
        raise SpdyError("compare needs --calib (calibration data to search and score on)")
    request = CompareRequest(model=model, profile=profile, speedup=speedup, search=search, solve=solve,
                             rounds=rounds, match=match, cluster=cluster,
                             refit_steps=comma_list(global_refit, int, "--global-refit", "step counts like 0 or 0,200"))
    click.echo(compare_flow(request, _log).table())


@main.command(name="tradeoff")
@fail_cleanly
@evaluation_requests
@cluster_settings()
@click.option("--speedups", required=True, help="target speedups over dense, comma-separated, e.g. 1.2,1.5,2,2.5")
@click.option("--methods", default=",".join(("uniform", "global_magnitude", "lamp", "erk")), show_default=True,
              help="baselines to compare SPDY with (comma-separated; empty: SPDY alone)")
@click.option("--rounds", default=0, show_default=True, type=int,
              help="timing rounds per method and target, to measure every plan here (0: predicted only)")
@click.option("-o", "--output", default=None, help="folder for tradeoff.csv and tradeoff.png")
@click.option("--force", is_flag=True, help="replace an existing trade-off in the folder")
def tradeoff_command(model, profile, solve, search, cluster, speedups, methods, rounds, output, force):
    """The speed/accuracy curve: SPDY and the baselines at each of --speedups, with predicted (and with
    --rounds, measured) speedup, overall sparsity and, with --calib, calibration and held-out loss after
    one-shot pruning. Reuses the cached profile, database and searches."""
    from ..entrypoints.tradeoff import TradeoffRequest, tradeoff

    request = TradeoffRequest(
        model=model, profile=profile, search=search, solve=solve, rounds=rounds, force=force, cluster=cluster,
        speedups=comma_list(speedups, float, "--speedups", "numbers like 1.2,1.5,2"),
        methods=name_list(methods),
        output=path_or_none(output),
    )
    click.echo(tradeoff(request, _log).summary(request.output))


@main.command(name="verify")
@fail_cleanly
@click.argument("recipe_path", metavar="RECIPE")
@model_request(for_recipe=True)
@profile_request(for_fix=True)
@verify_settings()
@click.option("--fix", is_flag=True,
              help="when short (or more than 5% over), re-solve and rewrite the recipe until it meets the target "
                   "without overshooting")
@click.option("--trained", default=None,
              help="weights trained with RECIPE (file or folder): check their sparsity and measure them as they are")
@click.option("--report", "report_dir", default=None,
              help="write the HTML report of RECIPE with this measurement (and its layers' in-context times) to "
                   "this folder, replacing a report there")
def verify_command(recipe_path, model, profile, verify, fix, trained, report_dir):
    """Prune the model one-shot to RECIPE's sparsities (or load --trained weights) and measure its speedup
    against the dense model here."""
    from ..entrypoints import VerifyRequest, verify_recipe

    request = VerifyRequest(recipe=Path(recipe_path), model=model, profile=profile, verify=verify, fix=fix,
                            trained=trained, report=path_or_none(report_dir))
    closing = verify_recipe(request, _log, click.echo).closing(recipe_path)
    if closing:
        click.echo(closing)


@main.command(name="solve")
@fail_cleanly
@click.option("--profile", "profile_path", required=True, help="profile JSON file")
@click.option("--speedup", required=True, type=float,
              help="target end-to-end speedup over dense (fp32 for an INT8 profile), e.g. 2.0")
@solve_settings()
def solve_command(profile_path, speedup, solve):
    """Solve the SPDY DP on a stored profile and print the per-layer result."""
    from ..entrypoints.solve import solve_stored

    click.echo(solve_stored(Path(profile_path), speedup, solve))


@main.command(name="regenerate")
@fail_cleanly
@click.option("--manifest", default="recipes/manifest.yaml", show_default=True,
              help="the models x hardware x speedups x methods to build (README: Named hardware and the manifest)")
@click.option("--check", is_flag=True, help="write nothing; exit 1 listing every recipe that is stale or would change")
@cluster_settings(recipes=True)
def regenerate_command(manifest, check, cluster):
    """Rebuild every recipe of the manifest from the stored hardware profiles (deterministic); with --workers or
    --cluster, the recipes are built as Ray tasks spread over the workers."""
    from ..entrypoints.regenerate import regenerate, summary

    outcomes = regenerate(manifest, check, _log, cluster)
    text, failed = summary(outcomes, check)
    click.echo(text)
    if failed:
        sys.exit(1)


@main.command(name="report")
@fail_cleanly
@click.argument("recipe_path", metavar="RECIPE")
@click.option("-o", "--output", required=True, help="folder to write index.html and its PNG plots to")
@click.option("--profile", "profile_path", default=None,
              help="the profile the recipe was solved on [default: the one its metadata names, in --hw-root or "
                   "the local profile cache]")
@click.option("--hw-root", default=None, help="folder of named hardware [default: recipes/hardware]")
@click.option("--force", is_flag=True, help="replace an existing report in the folder")
def report_command(recipe_path, output, profile_path, hw_root, force):
    """Write an HTML report of RECIPE: per-layer sparsity and time, each layer's sweep, the layers left dense
    and why, the search's loss curve, predicted against measured speedup, and the provenance."""
    from ..entrypoints.report import ReportRequest, report

    page = report(ReportRequest(recipe=Path(recipe_path), output=Path(output), profile=path_or_none(profile_path),
                                hw_root=path_or_none(hw_root), force=force))
    click.echo(f"wrote {page}")


@main.command(name="inspect")
@fail_cleanly
@click.argument("path")
def inspect_command(path):
    """Summarise a profile (.json) or a recipe (.yaml/.md)."""
    from ..entrypoints.report import inspect

    click.echo(inspect(path))
