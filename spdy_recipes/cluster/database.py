"""The reconstruction database on Ray: one task per layer (``sensitivity.database.build_layer``), each layer's
weight and input Hessian put into the object store once and passed to its task by reference."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..sensitivity.database import LayerBuilder, LayerJob, LayerRows, build_layer
from .runtime import RETRIES, Cluster, fault_point, gather, worker_threads

IN_FLIGHT = 2  # layer tasks submitted per worker at a time: the next layer's inputs are ready, memory bounded


def _build_task(weight: torch.Tensor, hessian: torch.Tensor | None, grid: list[float], method: str,
                mask_type: str) -> LayerRows:
    """One layer's rows, in a Ray worker (``WORKER_THREADS`` torch threads)."""
    worker_threads()
    fault_point("database")
    return build_layer(weight, hessian, grid, method, mask_type)


def layer_builder(cluster: Cluster) -> LayerBuilder:
    """A ``LayerBuilder`` that builds every layer as its own Ray task (retried once when its worker dies),
    ``IN_FLIGHT`` per worker at a time, and reports each layer as it finishes. Raises SpdyError when a task
    fails (``runtime.gather``)."""
    def build(jobs: list[LayerJob], grid: list[float], method: str, mask_type: str,
              step: Callable[[str, int], None]) -> dict[str, LayerRows]:
        import ray

        task = ray.remote(num_cpus=1, max_retries=RETRIES)(_build_task)
        waiting = list(jobs)
        pending: dict = {}
        rows: dict[str, LayerRows] = {}
        while waiting or pending:
            while waiting and len(pending) < IN_FLIGHT * cluster.width:  # a layer's inputs are put when it starts
                name, weight, hessian = waiting.pop(0)  # (tensors from a GPU setup move to the CPU)
                weight_ref = ray.put(weight.cpu())
                hessian_ref = ray.put(hessian.cpu() if hessian is not None else None)
                pending[task.remote(weight_ref, hessian_ref, grid, method, mask_type)] = (name, weight.numel())
            ready, _ = ray.wait(list(pending), num_returns=1)
            name, size = pending.pop(ready[0])
            rows[name] = gather(ready, f"building the database layer {name}")[0]
            step(f"{method} {name}", size)
        return rows

    return build
