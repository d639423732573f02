"""``profile``: measure a model's per-layer latency table here, calibrate it on real engine calls, and store
it (the local cache, a named hardware's folder, or a file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpdyError
from ..files import refuse_overwrite
from ..profile import Profile
from ..profile.store import ProfileRequest
from .common import ModelRequest, warn_if_other_machine


@dataclass(frozen=True, kw_only=True)
class MeasureRequest:
    """A profile to measure: the model, how and for which hardware (``profile.hw``: 'local' or a NAME), the
    file to write (None: the local cache or ``recipes/hardware/NAME/``), and a new hardware's instance type."""

    model: ModelRequest
    profile: ProfileRequest
    output: Path | None = None
    force: bool = False
    instance_type: str | None = None
    cluster: str | None = None  # a Ray cluster address: measure a NAME on its node with the resource hw:NAME


@dataclass(frozen=True)
class ProfileOutcome:
    """The profile file, and the profile measured (None: a cached one was there already)."""

    path: Path
    profile: Profile | None

    def summary(self) -> str:
        """One line: what was measured and written, or that the cache held it."""
        measured = self.profile
        if measured is None:
            return f"cached profile {self.path} (use --force to measure again)"
        flags = measured.flags
        return (f"profile of {len(measured.layers)} layers x {len(measured.grid)} levels x {measured.repeats} "
                f"repeats: dense {measured.dense_ms:.2f} ms (call overhead {measured.call_overhead_ms:.2f} ms); "
                f"{len(flags['non_monotone'])} non-monotone layer(s), {len(flags['noisy_levels'])} noisy level(s); "
                f"{measured.calibration_label()}; wrote {self.path}")


def _measure_on_cluster(request: MeasureRequest) -> ProfileOutcome:
    """The named hardware's profile measured on its Ray node (``cluster.profile.profile_on_node``)."""
    from ..cluster import ClusterSettings, open_cluster
    from ..cluster.profile import profile_on_node
    from ..profile import load_profile
    from ..profile.store import LOCAL, profile_filename

    if request.profile.hw == LOCAL or request.output is not None:
        raise SpdyError("profile --cluster measures a hardware NAME on its node and stores it under "
                        "recipes/hardware/NAME/: give --hw NAME, without -o")
    bundle = request.model.load()
    folder = request.profile.hw_root / request.profile.hw
    if request.profile.cores is not None and not request.force:
        refuse_overwrite(folder / profile_filename(bundle, request.profile.cores, request.profile.timing.deployment),
                         False)
    with open_cluster(ClusterSettings(address=request.cluster), _stderr) as cluster:
        assert cluster is not None  # an address was given
        path = profile_on_node(cluster, request.model, bundle, request.profile, _stderr)
    return ProfileOutcome(path, load_profile(path))


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


def measure_and_save(request: MeasureRequest) -> ProfileOutcome:
    """Measure the profile (``profile.measure.measure_profile``) and write it atomically. A local profile
    already cached is kept unless ``force``; a named hardware folder described as another machine is a
    warning. With ``request.cluster``, a hardware NAME is measured on that Ray cluster's node started with the
    resource ``hw:NAME`` (``cluster.profile``). Raises SpdyError on a path given as ``hw``, bad settings, or an
    existing file without ``force``."""
    from ..profile import save_profile
    from ..profile.backends import engine_label, get_backend
    from ..profile.hardware import read_description, write_description
    from ..profile.measure import measure_profile
    from ..profile.store import LOCAL, check_cores, is_path, local_cache_path, profile_filename

    hw, wanted = request.profile.hw, request.profile
    if is_path(hw):
        raise SpdyError("profile --hw takes 'local' or a hardware NAME; use -o for a file path")
    if request.cluster is not None:
        return _measure_on_cluster(request)
    bundle = request.model.load()
    measurer = get_backend(wanted.backend)
    cores = check_cores(wanted.cores if wanted.cores is not None else measurer.max_cores(), measurer.max_cores())
    if request.output:
        path = request.output
    elif hw == LOCAL:
        path = local_cache_path(bundle, cores, wanted, measurer)
        if path.is_file() and not request.force:
            return ProfileOutcome(path, None)
    else:
        folder = wanted.hw_root / hw
        description = read_description(folder)
        if description:
            warn_if_other_machine(description, description.get("engine"), measurer, f"hardware {hw!r}",
                                  "is described as", "machine", f"profiles in {folder} will mix machines")
        else:
            write_description(folder, hw, request.instance_type, measurer.describe_host(), engine_label(measurer))
        path = folder / profile_filename(bundle, cores, wanted.timing.deployment)
    refuse_overwrite(path, request.force)
    measured = measure_profile(bundle, wanted.grid, cores, hw, measurer, wanted.timing)
    save_profile(measured, path)
    return ProfileOutcome(path, measured)
