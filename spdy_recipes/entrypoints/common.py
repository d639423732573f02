"""What the flows share: how a model and its profile are asked for, how verification is set up, and the
search-backed solver."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import SpdyError, warn
from ..models import ModelBundle
from ..profile import Profile
from ..progress import Log
from ..sensitivity.setup import CalibrationSettings
from ..solve import Plan
from ..solve.search import SearchSettings
from ..solve.settings import SolveSettings, solve


@dataclass(kw_only=True, frozen=True)
class ModelRequest:
    """A model to load: ``spec`` (torchvision:NAME, sparseml:KEY, hf:DIR, yolov5:CFG, python:MODULE:CALLABLE),
    optional state_dict file, input shape without batch (e.g. "3,224,224"; hf: the sequence length) and class
    count (torchvision:, sparseml:; None: the architecture's default)."""

    spec: str
    batch_size: int | None = 16  # None: the recipe's (verify), filled in before ``load``
    input_shape: str | None = None
    weights: str | None = None
    num_classes: int | None = None

    def load(self) -> ModelBundle:
        """The model, its inputs and prunable layers (``models.load_model``). Raises SpdyError on a bad spec or
        option, or when no batch size was given."""
        from ..models import load_model
        from ..models.spec import parse_input_shape

        if self.batch_size is None:
            raise SpdyError("no batch size given for the model (--batch-size)")
        return load_model(self.spec, self.batch_size, parse_input_shape(self.input_shape), self.weights,
                          self.num_classes)


@dataclass(frozen=True)
class VerifySettings:
    """How a plan is checked here: ``enabled`` (None: when the profile is this machine's), ``tolerance``
    (accepted fraction below the target; 1 reports without judging), timing ``rounds`` per measurement
    and solve-and-measure rounds at most (``max_rounds``)."""

    enabled: bool | None = None
    tolerance: float = 0.0
    rounds: int = 10
    max_rounds: int = 4

    def check(self) -> None:
        """Raises SpdyError on out-of-range settings."""
        if not 0.0 <= self.tolerance <= 1.0 or self.rounds < 1 or self.max_rounds < 1:
            raise SpdyError("--tolerance must be in [0, 1] and --rounds, --max-rounds at least 1")


@dataclass(frozen=True)
class SearchRequest:
    """SPDY's search: the calibration data and database it is scored on (``calibration``: source, samples,
    held-out samples, seed, database kind, held-out source; see ``sensitivity.setup.CalibrationSettings``) and
    its budget ("150" candidates or "10m" minutes); ``device``: where its torch work runs (``device.resolve_device``:
    auto, cpu, cuda, cuda:N)."""

    calibration: CalibrationSettings
    budget: str = "150"
    device: str = "auto"

    def torch_device(self):
        """The resolved ``device``. Raises SpdyError for a bad name or a GPU torch does not see."""
        from ..device import resolve_device

        return resolve_device(self.device)

    def search_settings(self) -> SearchSettings:
        """The search's seed and budget (candidates or minutes). Raises SpdyError on a bad budget."""
        from ..solve.search import parse_budget

        steps, minutes = parse_budget(self.budget)
        return SearchSettings(seed=self.calibration.seed, steps=steps, minutes=minutes)


def plain_solver(target: float, settings: SolveSettings) -> Callable[[Profile, float | None], Plan]:
    """``solver(profile, solve_speedup)`` on the settings' errors (prior or sensitivity table)."""
    def solver(profile: Profile, solve_speedup: float | None = None) -> Plan:
        return solve(profile, target, settings, solve_speedup)

    return solver


@contextmanager
def search_progress(total: int | None, log: Log) -> Iterator[Callable]:
    """A progress bar on a terminal (with the time left), else a line per improvement; yields the search's
    callback."""
    from tqdm import tqdm

    with tqdm(total=total, desc="[search]", unit="candidate", file=sys.stderr, disable=None) as bar:
        def progress(state):
            bar.n = state.step
            bar.set_postfix_str(f"best {state.best_loss:.5g}", refresh=False)
            bar.refresh()
            if bar.disable and state.curve[-1][0] == state.step:
                log(f"[search] candidate {state.step}: best calibration loss {state.best_loss:.5g}")

        yield progress


def prepare_search(bundle: ModelBundle, profile: Profile, selected: list[str], request: SearchRequest, log: Log,
                   cluster=None):
    """The AccuracySetup of ``request`` on ``request.device`` (``sensitivity.setup.prepare``); with ``cluster``
    (``cluster.Cluster``), its database's layers are Ray tasks and its search's candidates are scored by Ray
    actors (``cluster.scoring.ScoringPool``). Raises SpdyError on a bad device or calibration source."""
    from ..sensitivity.database import LayerBuilder, build_locally
    from ..sensitivity.setup import prepare

    device = request.torch_device()
    builder: LayerBuilder = build_locally
    if cluster is not None:
        from ..cluster.database import layer_builder

        builder = layer_builder(cluster)
        if device.type != "cpu":
            warn(f"--device {device}: with Ray, the database's layers and the search's candidates run on the "
                 f"workers' CPUs; {device} takes the layer inputs, Hessians and the final evaluation")
    setup = prepare(bundle, profile.grid, selected, request.calibration, log, profile.deployment.mask, device,
                    builder)
    if cluster is not None:
        from ..cluster.scoring import ScoringPool

        setup.pool = ScoringPool(cluster, setup.bundle.module, setup.calibration, setup.database, setup.selected,
                                 setup.bundle.batch_size)
    return setup


def searched_solver(bundle: ModelBundle, profile: Profile, speedup: float, settings: SolveSettings,
                    request: SearchRequest, log: Log, cluster=None):
    """Calibration data and database ready, a SearchedSolver for ``speedup``; fails on an infeasible
    speedup before any work. With ``cluster`` (``cluster.Cluster``), the database's layers are Ray tasks and
    the search's candidates are scored by Ray actors. Returns (solver, CalibrationSettings)."""
    from ..solve.objective import SearchedSolver

    calibration = request.calibration
    search = request.search_settings()
    selected = settings.selected(profile)
    solve(profile, speedup, settings)  # infeasible: fail before any work
    setup = prepare_search(bundle, profile, selected, request, log, cluster)
    solver = SearchedSolver(setup, profile, speedup, settings, search, lambda: search_progress(search.steps, log),
                            log)
    return solver, calibration


def warn_if_other_machine(recorded: dict, recorded_engine: str | None, backend, what: str,
                          verb: str = "was measured on", noun: str = "machine or engine",
                          consequence: str = "timings here may not match it") -> tuple[str, ...]:
    """Measuring here against numbers from another CPU or engine version: say so ("{what} {verb} another
    {noun} (differences); {consequence}"). Returns the warning, for a report's notes (none when the
    machine and engine are the same)."""
    from ..profile.backends import engine_label
    from ..profile.hardware import host_differences

    differences = host_differences(recorded, backend.describe_host(), engine_label(backend), recorded_engine)
    if not differences:
        return ()
    message = f"{what} {verb} another {noun} ({'; '.join(differences)}); {consequence}"
    warn(message)
    return (message,)
