"""Where profiles live and how ``--hw`` finds one: ``local`` (measured here, cached), a path, or a name.

Named hardware is a folder ``<root>/<NAME>/`` with a ``hardware.yaml`` description and one profile per
model, batch size and core count (``<model>-bs<B>-c<C>.json``). Stored profiles need no engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..deployment import FP32, Deployment
from ..errors import SpdyError
from ..files import cache_dir
from ..models import ModelBundle
from ..models.fingerprint import graph_hash
from .backends import TimingBackend, engine_label, get_backend
from .grid import spdy_grid
from .hardware import read_description
from .measure import TimingSettings, measure_profile
from .schema import Profile, load_profile, save_profile

LOCAL = "local"


@dataclass(kw_only=True)
class ProfileRequest:
    """Which profile a command wants: ``hw`` (local, NAME or PATH), cores (None: the hardware's own)."""

    hw: str
    grid: list[float] = field(default_factory=spdy_grid)
    cores: int | None = None
    hw_root: Path = field(default_factory=lambda: hardware_root())
    timing: TimingSettings = TimingSettings()
    backend: str = "deepsparse"
    baseline: str = "fp32"  # the dense model speedups are over (``Profile.with_baseline``)


class ProfileMissing(SpdyError):
    """A named hardware has no profile for the model (or the folder is unknown), or its profile is stale: one
    measured on that hardware (``cluster.profile``) would answer it."""


def hardware_root(override: str | None = None) -> Path:
    """The folder of named hardware (``--hw-root``, ``$SPDY_RECIPES_HW_ROOT`` or ./recipes/hardware)."""
    return Path(override or os.environ.get("SPDY_RECIPES_HW_ROOT") or "recipes/hardware")


def profile_filename(bundle: ModelBundle, cores: int, deployment: Deployment = FP32) -> str:
    """The file name a named hardware folder uses for this model, batch size, core count and deployment
    (``-int8-block4`` after the core count; nothing for fp32 unstructured, the name older folders use)."""
    resolved = deployment.resolved()
    suffix = "" if resolved == FP32 else f"-{resolved.precision}-{resolved.mask_type}"
    return f"{bundle.slug}-bs{bundle.batch_size}-c{cores}{suffix}.json"


def is_path(hw: str) -> bool:
    """True when ``--hw`` names a file rather than a hardware name."""
    return hw.endswith(".json") or "/" in hw or os.sep in hw


def check_cores(cores: int, available: int) -> int:
    if not 1 <= cores <= available:
        raise SpdyError(f"--cores must be between 1 and {available} on this machine, got {cores}")
    return cores


def local_cache_path(bundle: ModelBundle, cores: int, request: ProfileRequest, backend: TimingBackend) -> Path:
    """The cache file for a profile measured here, with these settings, by this engine on this CPU."""
    timing = request.timing
    host_key = f"{backend.describe_host()['cpu_model']}|{engine_label(backend)}"
    deployment = timing.deployment.resolved()
    key = json.dumps([graph_hash(bundle), bundle.batch_size, cores, request.grid, host_key, timing.iterations,
                      timing.warmup, timing.repeats] + ([timing.run_design] if timing.run_design != "uniform" else [])
                     + ([deployment.precision, deployment.mask_type] if deployment != FP32 else [])
                     + ["fused_groups"]  # profiles cached before fusion groups were recorded are measured again
                     + ([f"calibrated:{timing.calibration_plans}"] if timing.calibration_plans else []))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / "profiles" / f"{bundle.slug}-{digest}.json"


def create_command(bundle: ModelBundle, hw: str, cores: int | None, deployment: Deployment = FP32) -> str:
    """The one command that measures the missing profile on the machine ``hw`` names."""
    command = f"spdy-recipe profile --model {bundle.spec} --hw {hw} --batch-size {bundle.batch_size}"
    resolved = deployment.resolved()
    return (command + (f" --cores {cores}" if cores else "")
            + ("" if resolved == FP32 else f" --precision {resolved.precision} --mask-type {resolved.mask_type}"))


def known_hardware(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def named_profile_path(hw: str, bundle: ModelBundle, cores: int | None, root: Path,
                       deployment: Deployment = FP32) -> tuple[Path, int]:
    """The profile file of hardware ``hw`` for ``deployment`` and its core count; one-line errors when anything
    is missing."""
    folder = root / hw
    if not folder.is_dir():
        listing = ", ".join(known_hardware(root)) or "none"
        raise ProfileMissing(f"unknown hardware {hw!r} (known in {root}: {listing}); create it on that machine "
                        f"with: {create_command(bundle, hw, cores, deployment)}")
    if cores is None:
        cores = read_description(folder).get("cores")
    if cores is None:  # the one core count this deployment's profiles were measured at
        name = re.compile(re.escape(profile_filename(bundle, 0, deployment)).replace("-c0", r"-c(\d+)") + "$")
        counts = {int(m.group(1)) for p in folder.glob(f"{bundle.slug}-*.json") if (m := name.match(p.name))}
        if len(counts) == 1:
            cores = counts.pop()
    path = folder / profile_filename(bundle, cores, deployment) if cores else None
    if path is None or cores is None or not path.is_file():
        available = ", ".join(p.name for p in sorted(folder.glob(f"{bundle.slug}-*.json"))) or "none"
        at = f"{cores} cores" if cores else "any core count"
        raise ProfileMissing(f"hardware {hw!r} has no profile for {bundle.spec} at batch {bundle.batch_size}, {at} "
                        f"(it has: {available}); create it on that machine with: "
                        f"{create_command(bundle, hw, cores, deployment)}")
    return path, cores


def check_profile_matches(profile: Profile, bundle: ModelBundle, cores: int | None, source: str,
                          deployment: Deployment | None = None) -> None:
    """Refuse a profile measured for another model graph (stale), batch size, core count or ``deployment``
    (precision and mask type; None: any)."""
    expected = graph_hash(bundle)
    if profile.model.get("graph_hash") != expected:
        raise ProfileMissing(f"profile {source} does not match the model {bundle.spec} (stale, or another model): "
                        f"it was measured for {profile.model.get('spec')} with graph "
                        f"{profile.model.get('graph_hash')}, the model has graph {expected}; measure it again")
    if profile.batch_size != bundle.batch_size:
        raise SpdyError(f"profile {source} was measured at batch {profile.batch_size}, not {bundle.batch_size}")
    if cores is not None and profile.cores != cores:
        raise SpdyError(f"profile {source} was measured on {profile.cores} cores, not {cores}")
    if deployment is not None:
        check_deployment(profile, deployment, source)


def check_deployment(profile: Profile, deployment: Deployment, source: str) -> None:
    """Refuse a profile timed in another precision or mask type than ``deployment``: its speedups are over
    another dense model, and its recipe would prune in another pattern."""
    measured, asked = profile.deployment.resolved(), deployment.resolved()
    if measured != asked:
        raise SpdyError(f"profile {source} was measured in {measured.label}; this command needs one measured "
                        f"in {asked.label}")


def obtain_profile(bundle: ModelBundle, request: ProfileRequest) -> tuple[Profile, Path]:
    """The profile ``request.hw`` refers to, its speedups over ``request.baseline``. ``local`` measures here
    with the timing backend on a cache miss; a NAME or PATH is a stored profile and needs no engine."""
    hw, cores = request.hw, request.cores
    if hw == LOCAL:
        backend = get_backend(request.backend)
        cores = check_cores(cores or backend.max_cores(), backend.max_cores())
        path = local_cache_path(bundle, cores, request, backend)
        if not path.is_file():
            save_profile(measure_profile(bundle, request.grid, cores, LOCAL, backend, request.timing), path)
    elif is_path(hw):
        path = Path(hw)
    else:
        path, cores = named_profile_path(hw, bundle, cores, request.hw_root, request.timing.deployment)
    profile = load_profile(path)
    check_profile_matches(profile, bundle, cores, str(path), request.timing.deployment)
    return profile.with_baseline(request.baseline), path
