"""Where profiles live and how ``--hw`` finds one: ``local`` (measured here, cached), a path, or a name."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

from ..errors import SpdyError
from ..models import ModelBundle
from ..models.fingerprint import graph_hash
from .schema import Profile, load_profile, save_profile

LOCAL = "local"


def cache_dir() -> Path:
    """The cache for locally measured profiles (``$SPDY_RECIPES_CACHE`` or ~/.cache/spdy-recipes)."""
    return Path(os.environ.get("SPDY_RECIPES_CACHE") or Path.home() / ".cache" / "spdy-recipes")


def hardware_root(override: str | None = None) -> Path:
    """The folder of named hardware (``--hw-root``, ``$SPDY_RECIPES_HW_ROOT`` or ./recipes/hardware)."""
    return Path(override or os.environ.get("SPDY_RECIPES_HW_ROOT") or "recipes/hardware")


def profile_filename(bundle: ModelBundle, cores: int) -> str:
    """The file name a named hardware folder uses for this model, batch size and core count."""
    return f"{bundle.slug}-bs{bundle.batch_size}-c{cores}.json"


def local_cache_path(bundle: ModelBundle, cores: int, grid: list[float], host_key: str) -> Path:
    """The cache file for a profile measured here with these settings."""
    key = json.dumps([graph_hash(bundle), bundle.batch_size, cores, grid, host_key])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / "profiles" / f"{bundle.slug}-{digest}.json"


def is_path(hw: str) -> bool:
    """True when ``--hw`` names a file rather than a hardware name."""
    return hw.endswith(".json") or "/" in hw or os.sep in hw


def named_profile_path(hw: str, bundle: ModelBundle, cores: int, root: Path) -> Path:
    """The profile file of hardware ``hw``; a one-line error when the hardware or the profile is missing."""
    folder = root / hw
    command = (f"spdy-recipe profile --model {bundle.spec} --hw {hw} --batch-size {bundle.batch_size} "
               f"--cores {cores}")
    if not folder.is_dir():
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        listing = ", ".join(known) if known else "none"
        raise SpdyError(f"unknown hardware {hw!r} (known in {root}: {listing}); create it on that machine with: {command}")
    path = folder / profile_filename(bundle, cores)
    if not path.is_file():
        raise SpdyError(f"hardware {hw!r} has no profile for {bundle.spec} at batch {bundle.batch_size}, "
                        f"{cores} cores; create it on that machine with: {command}")
    return path


def check_profile_matches(profile: Profile, bundle: ModelBundle, cores: int, source: str) -> None:
    """Refuse a profile measured for another model graph, batch size or core count."""
    expected = graph_hash(bundle)
    if profile.model.get("graph_hash") != expected:
        raise SpdyError(f"profile {source} does not match the model {bundle.spec}: it was measured for "
                        f"{profile.model.get('spec')} (graph {profile.model.get('graph_hash')}, model has {expected})")
    if profile.batch_size != bundle.batch_size:
        raise SpdyError(f"profile {source} was measured at batch {profile.batch_size}, not {bundle.batch_size}")
    if profile.cores != cores:
        raise SpdyError(f"profile {source} was measured on {profile.cores} cores, not {cores}")


def resolve_profile(
    hw: str,
    bundle: ModelBundle,
    cores: int,
    grid: list[float],
    measure: Callable[[], Profile],
    host_key: str,
    root: Path,
) -> tuple[Profile, Path]:
    """Load the profile ``hw`` refers to, measuring and caching it first when ``hw`` is ``local``."""
    if hw == LOCAL:
        path = local_cache_path(bundle, cores, grid, host_key)
        if not path.is_file():
            save_profile(measure(), path)
    elif is_path(hw):
        path = Path(hw)
    else:
        path = named_profile_path(hw, bundle, cores, root)
    profile = load_profile(path)
    check_profile_matches(profile, bundle, cores, str(path))
    return profile, path
