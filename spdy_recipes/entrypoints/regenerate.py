"""Rebuild every recipe of a manifest from stored profiles, or check that the committed ones are current."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..cluster import ClusterSettings, open_cluster
from ..emit import RecipeSettings
from ..emit.manifest import RecipeJob, load_manifest
from ..emit.write import render_checked_recipe
from ..errors import SpdyError
from ..files import atomic_write_text
from ..models import ModelBundle, load_model, prunable_layers
from ..models.spec import parse_input_shape
from ..profile import Profile
from ..profile.store import ProfileRequest, obtain_profile
from ..solve.settings import SolveSettings, solve


@dataclass(frozen=True)
class Outcome:
    """What happened (or would happen) to one recipe file."""

    path: Path
    status: str  # current, written, changed, missing, error
    detail: str = ""

    @property
    def ok_for_check(self) -> bool:
        return self.status == "current"


class _Sources:
    """The models and stored profiles of one regeneration run, each loaded once for all its jobs."""

    def __init__(self, hw_root: Path) -> None:
        self.hw_root = hw_root
        self._models: dict[tuple, tuple[ModelBundle, set[str]]] = {}
        self._profiles: dict[tuple, tuple[Profile, Path]] = {}

    def model(self, job: RecipeJob) -> tuple[ModelBundle, set[str]]:
        """The job's model and the names of its prunable layers."""
        key = (job.model, job.batch_size, job.input_shape, job.num_classes)
        if key not in self._models:
            bundle = load_model(job.model, job.batch_size, parse_input_shape(job.input_shape),
                                num_classes=job.num_classes)
            self._models[key] = bundle, {layer.name for layer in prunable_layers(bundle.module)}
        return self._models[key]

    def profile(self, job: RecipeJob, bundle: ModelBundle) -> tuple[Profile, Path]:
        """The stored profile of the job's hardware for its model (no engine needed)."""
        key = (job.model, job.batch_size, job.input_shape, job.num_classes, job.hardware, job.cores)
        if key not in self._profiles:
            request = ProfileRequest(hw=job.hardware, cores=job.cores, hw_root=self.hw_root)
            self._profiles[key] = obtain_profile(bundle, request)
        return self._profiles[key]


def build_recipe(job: RecipeJob, sources: _Sources, base: Path) -> str:
    """The recipe text ``job`` asks for, from the stored profile of its hardware."""
    bundle, model_layers = sources.model(job)
    profile, profile_path = sources.profile(job, bundle)
    sensitivity = str(base / job.sensitivity) if job.sensitivity else None
    settings = SolveSettings(include=job.include, exclude=job.exclude, sensitivity=sensitivity, quantile=job.quantile)
    plan = solve(profile, job.speedup, settings)
    recipe = RecipeSettings(method=job.method, epochs=job.epochs)  # init_lr: the model's, at rendering
    return render_checked_recipe(plan, profile, profile_path, recipe, settings, model_layers)


def _try_build(job: RecipeJob, sources: _Sources, base: Path) -> str | SpdyError:
    """``build_recipe``, its SpdyError returned instead of raised, so that every job is tried."""
    try:
        return build_recipe(job, sources, base)
    except SpdyError as exc:
        return exc


def _build_task(job: RecipeJob, hw_root: Path, base: Path) -> str | SpdyError:
    """One job's recipe text (or its SpdyError) in a Ray worker."""
    from ..cluster.runtime import fault_point

    fault_point("regenerate")
    return _try_build(job, _Sources(hw_root), base)


def _built(jobs: list[RecipeJob], hw_root: Path, base: Path, cluster) -> Iterator[str | SpdyError]:
    """Every job's recipe text (or its SpdyError), in order: built here one after another, or with ``cluster``
    one Ray task per job (retried once when its worker dies; ``cluster.runtime``)."""
    if cluster is None:
        sources = _Sources(hw_root)
        for job in jobs:
            yield _try_build(job, sources, base)
        return
    import ray

    from ..cluster.runtime import RETRIES, gather

    task = ray.remote(num_cpus=1, max_retries=RETRIES)(_build_task)
    refs = [task.remote(job, hw_root, base) for job in jobs]
    for job, ref in zip(jobs, refs, strict=True):
        yield gather([ref], f"building {job.output}")[0]


def regenerate(manifest: str | Path, check: bool, log: Callable[[str], None],
               cluster_settings: ClusterSettings | None = None) -> list[Outcome]:
    """Build every recipe (with ``cluster_settings``, as Ray tasks spread over its workers); write changed ones
    unless ``check``. Every job is tried even after a failure. Raises SpdyError when a Ray worker dies twice
    on one job (nothing is written then)."""
    jobs, hw_root = load_manifest(manifest)
    base = Path(manifest).parent
    cluster_settings = cluster_settings or ClusterSettings()
    cluster_settings.check()
    with open_cluster(cluster_settings, log) as cluster:
        texts = list(_built(jobs, hw_root, base, cluster))  # all built before anything is written
    return _write(jobs, texts, check, log)


def _write(jobs: list[RecipeJob], texts: list[str | SpdyError], check: bool,
           log: Callable[[str], None]) -> list[Outcome]:
    """Compare each job's text with its file and write it unless ``check``; one outcome per job."""
    outcomes = []
    for number, (job, text) in enumerate(zip(jobs, texts, strict=True), 1):
        if isinstance(text, SpdyError):
            outcomes.append(Outcome(job.output, "error", str(text)))
        else:
            old = job.output.read_text() if job.output.is_file() else None
            if old == text:
                outcomes.append(Outcome(job.output, "current"))
            elif check:
                outcomes.append(Outcome(job.output, "missing" if old is None else "changed"))
            else:
                atomic_write_text(job.output, text)
                outcomes.append(Outcome(job.output, "written"))
        log(f"[regenerate] {number}/{len(jobs)} {outcomes[-1].status}: {job.output}")
    return outcomes


def summary(outcomes: list[Outcome], check: bool) -> tuple[str, bool]:
    """The command's lines: every recipe that is stale or would change (``check``) or failed, then the counts;
    and whether any did (the command then exits 1)."""
    problems = [o for o in outcomes if (not o.ok_for_check if check else o.status == "error")]
    lines = [f"{o.status}: {o.path}" + (f" ({o.detail})" if o.detail else "") for o in problems]
    counts = {status: sum(o.status == status for o in outcomes) for status in
              ("current", "written", "changed", "missing", "error")}
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items() if n) + f" of {len(outcomes)} recipe(s)")
    return "\n".join(lines), bool(problems)
