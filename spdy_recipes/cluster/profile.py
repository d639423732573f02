"""A named hardware's profile measured on that hardware: a Ray task that asks for the custom resource ``hw:NAME``
runs on the node started with it (``ray start --address ... --resources='{"hw:NAME": 1}'``), taking all of that
node's CPUs so that nothing else runs there while it times; the profile comes back and is stored in the named
hardware's folder (``recipes/hardware/NAME/``), with the node's id in its ``hardware`` record."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SpdyError
from ..models import ModelBundle
from ..profile import Profile
from ..profile.store import LOCAL, ProfileMissing, ProfileRequest, is_path, obtain_profile
from .runtime import RETRIES, Cluster, gather


def resource_of(hw: str) -> str:
    """The custom Ray resource a node of hardware ``hw`` is started with."""
    return f"hw:{hw}"


def _measure_task(model: Any, request: ProfileRequest) -> tuple[dict, dict, str, str]:
    """On the hardware's node: measure the profile (``profile.measure.measure_profile``); return it as a dict,
    the node's host description, engine label and Ray node id."""
    import ray

    from ..profile.backends import engine_label, get_backend
    from ..profile.measure import measure_profile
    from ..profile.store import check_cores

    bundle = model.load()
    backend = get_backend(request.backend)
    cores = check_cores(request.cores if request.cores is not None else backend.max_cores(), backend.max_cores())
    measured = measure_profile(bundle, request.grid, cores, request.hw, backend, request.timing, lambda _: None)
    return (measured.to_dict(), backend.describe_host(), engine_label(backend),
            ray.get_runtime_context().get_node_id())


def profile_on_node(cluster: Cluster, model: Any, bundle: ModelBundle, request: ProfileRequest,
                    log: Callable[[str], None]) -> Path:
    """Measure ``model``'s profile on the node that offers ``hw:NAME`` and store it in the hardware's folder
    (described from that node when the folder is new). Returns the profile's path. Raises SpdyError when no
    live node offers the resource, or the task fails (``runtime.gather``)."""
    import ray

    from ..profile import save_profile
    from ..profile.hardware import read_description, write_description
    from ..profile.schema import profile_from_dict
    from ..profile.store import profile_filename

    resource = resource_of(request.hw)
    nodes = [node for node in ray.nodes() if node.get("Alive") and resource in node.get("Resources", {})]
    if not nodes:
        raise SpdyError(f"no node of {cluster.where()} offers the resource {resource}: start one on that machine "
                        f"with: ray start --address <head address> --resources='{{\"{resource}\": 1}}'")
    cpus = float(nodes[0]["Resources"].get("CPU", 0))
    task = ray.remote(num_cpus=cpus, resources={resource: 1}, max_retries=RETRIES)(_measure_task)
    log(f"[profile] measuring {bundle.spec} on the node with {resource}, all its {cpus:g} CPU(s) reserved so that "
        f"nothing else runs there")
    data, host, engine, node_id = gather([task.remote(model, request)], f"profiling on the node with {resource}")[0]
    data["hardware"] = {**data["hardware"], "ray_node_id": node_id}
    profile = profile_from_dict(data)
    folder = request.hw_root / request.hw
    if not read_description(folder):
        write_description(folder, request.hw, None, host, engine)
    path = folder / profile_filename(bundle, profile.cores, request.timing.deployment)
    save_profile(profile, path)
    log(f"[profile] wrote {path} (measured on Ray node {node_id})")
    return path


def obtain_profile_on(cluster: Cluster | None, model: Any, bundle: ModelBundle, request: ProfileRequest,
                      log: Callable[[str], None]) -> tuple[Profile, Path]:
    """``profile.store.obtain_profile``; with a joined cluster (``--cluster``, ``RAY_ADDRESS``) and a hardware
    NAME whose profile is missing or stale (``ProfileMissing``), measure it on that hardware's node first
    (``profile_on_node``)."""
    if cluster is None or cluster.address is None or request.hw == LOCAL or is_path(request.hw):
        return obtain_profile(bundle, request)  # (a local instance of --workers has no hardware nodes)
    try:
        return obtain_profile(bundle, request)
    except ProfileMissing as missing:
        log(f"[profile] {str(missing).split('; create it on')[0]}")
    profile_on_node(cluster, model, bundle, request, log)
    return obtain_profile(bundle, request)
