"""Joining or starting Ray, and reading results back (``--workers N``, ``--cluster ADDRESS``).

Ray is the one way work is spread over processes or machines. ``ray.init`` starts a local instance with N worker
CPUs, or joins a running cluster (``--cluster ADDRESS``, or ``RAY_ADDRESS`` when ``--workers`` is given without
it). Without either flag nothing here runs and Ray is never imported.

Every task is retried once (``RETRIES``) when its worker dies, and the scoring actors are started afresh once
(``scoring.ScoringPool``); a second death, or a task's own error, ends the command in one ``error:`` line
(``gather``).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import SpdyError, first_line

CONNECT_TIMEOUT_S = 10.0  # how long a cluster address may take to answer
RETRIES = 1  # a task whose worker dies runs once more; an actor that dies restarts once
WORKER_THREADS = 1  # torch threads per task and actor: the same arithmetic whatever the worker count
# what a worker needs from the driver's environment (the engine's analytics stay off on every node)
WORKER_ENV = {"NM_DISABLE_ANALYTICS": "1"}
# fault injection for the suite (tests/test_cluster.py): "die:WHERE" makes every worker process that reaches
# WHERE exit at once; "die-once:WHERE:FILE" only the first one (it creates FILE), so the retry succeeds
FAULT_ENV = "SPDY_RECIPES_FAULT"


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """``workers``: worker processes (a local Ray instance of that many CPUs, or that many actors on a joined
    cluster); ``address``: a running cluster to join. Neither: everything runs in this process."""

    workers: int | None = None
    address: str | None = None

    @property
    def enabled(self) -> bool:
        return self.workers is not None or self.address is not None

    def check(self) -> None:
        """Raises SpdyError on a worker count below 1, or an address that is not ``host:port`` or ``auto``
        (Ray's ``ray://`` client needs ``ray[client]``, which is not installed)."""
        if self.workers is not None and self.workers < 1:
            raise SpdyError(f"--workers must be at least 1, got {self.workers}")
        for name, address in (("--cluster", self.address), ("$RAY_ADDRESS", os.environ.get("RAY_ADDRESS")
                                                            if self.enabled and self.address is None else None)):
            if address is not None:
                check_address(address, name)


class Cluster:
    """A Ray session: ``width`` (how many tasks or actors run at once) and ``remote`` work done through it."""

    def __init__(self, width: int, address: str | None) -> None:
        self.width, self.address = width, address

    def where(self) -> str:
        return f"the Ray cluster at {self.address}" if self.address else f"a local Ray instance ({self.width} workers)"


@contextmanager
def open_cluster(settings: ClusterSettings, log: Callable[[str], None]) -> Iterator[Cluster | None]:
    """Yield a Cluster for the command's lifetime (None when ``settings`` asks for none, without importing Ray),
    and shut Ray down afterwards. Raises SpdyError when Ray cannot start or the cluster cannot be joined."""
    if not settings.enabled:
        yield None
        return
    settings.check()
    import ray

    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        _check_reachable(address)
    env = {**WORKER_ENV, **({FAULT_ENV: os.environ[FAULT_ENV]} if FAULT_ENV in os.environ else {})}
    if address is None:  # a local instance: its workers import what this process imports, from the same paths
        env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), *[p for p in sys.path if p]])
    try:
        if address is None:
            ray.init(address="local", num_cpus=settings.workers, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False, runtime_env={"env_vars": env})
        else:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False,
                     runtime_env={"env_vars": env})
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
        where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
        hint = ""
        if address and os.environ.get("RAY_AUTH_MODE") != "token":  # `ray start --head` turns token auth on
            hint = ("; if the cluster was started with token authentication (Ray's default), export "
                    "RAY_AUTH_MODE=token with its token in ~/.ray/auth_token or $RAY_AUTH_TOKEN")
        raise SpdyError(f"cannot {where}: {first_line(exc)}{hint}") from None
    try:
        width = settings.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        cluster = Cluster(width, address)
        log(f"[cluster] {cluster.where()}")
        yield cluster
    finally:
        ray.shutdown()


def check_address(address: str, name: str = "--cluster") -> None:
    """Raise SpdyError unless ``address`` is ``host:port`` (port 1-65535) or ``auto``."""
    if address.startswith("ray://"):
        raise SpdyError(f"{name} {address}: Ray client addresses (ray://) need ray[client], which is not installed; "
                        f"give the head node's host:port (the GCS port, 6379 by default)")
    host, _, port = address.strip().rpartition(":")
    if address.strip() != "auto" and not (host and port.isdigit() and 1 <= int(port) <= 65535):
        raise SpdyError(f"bad {name} {address!r}: expected host:port of the Ray head (e.g. 10.0.0.5:6379), or auto "
                        f"for the cluster started on this machine")


def _check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise SpdyError when nothing answers at a ``host:port`` address (Ray itself retries such an address
    without end). ``auto`` and ``ray://`` addresses are left to Ray."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise SpdyError(f"cannot join the Ray cluster at {address}: nothing answers there within {timeout_s:g} s "
                        f"({exc.strerror or type(exc).__name__}); start its head with: ray start --head") from None


class WorkerDied(SpdyError):
    """A Ray worker process (a task's or an actor's) died, or its node did."""


def gather(refs: Sequence[Any], what: str) -> list[Any]:
    """``ray.get`` of ``refs`` in order; a task's SpdyError comes back as itself, a worker that died again
    after its retry as WorkerDied, any other Ray failure as one SpdyError naming ``what``."""
    import ray
    from ray import exceptions

    try:
        return list(ray.get(list(refs)))
    except exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
        if isinstance(cause, SpdyError):
            raise SpdyError(str(cause)) from None
        raise SpdyError(f"{what} failed on a Ray worker: {first_line(cause or exc)}") from None
    except exceptions.RayActorError as exc:
        if getattr(exc, "actor_init_failed", False):  # the actor's own error, not a death: no retry helps
            cause = getattr(exc, "error_msg", None) or str(exc)
            lines = [line for line in str(cause).splitlines() if line.strip() and not line.startswith(" ")]
            raise SpdyError(f"{what}: a Ray actor could not start: {lines[-1] if lines else type(exc).__name__}") \
                from None
        raise WorkerDied(f"a Ray worker died while {what} (retried {RETRIES}x): {type(exc).__name__}") from None
    except (exceptions.WorkerCrashedError, exceptions.ObjectLostError, exceptions.NodeDiedError) as exc:
        raise WorkerDied(f"a Ray worker died while {what} (retried {RETRIES}x): {type(exc).__name__}") from None
    except exceptions.RayError as exc:
        raise SpdyError(f"{what} failed in Ray: {first_line(exc)}") from None


def fault_point(where: str) -> None:
    """Exit this worker process at once when ``FAULT_ENV`` asks for it at ``where`` (the suite's killed-worker
    tests; see ``FAULT_ENV``). Does nothing otherwise."""
    fault = os.environ.get(FAULT_ENV, "")
    kind, _, rest = fault.partition(":")
    if kind == "die" and rest == where:
        os._exit(17)
    if kind == "die-once":
        place, _, marker = rest.partition(":")
        if place == where and marker and not os.path.exists(marker):
            with open(marker, "w"):
                pass
            os._exit(17)


def worker_threads() -> None:
    """Fix torch's thread count in a worker (``WORKER_THREADS``)."""
    import torch

    torch.set_num_threads(WORKER_THREADS)
