"""SPDY's search candidates scored in parallel by Ray actors, each holding the model, the calibration data and
the database once (``ray.put`` once, shared by every actor), and stitching and scoring as the search process
would (``sensitivity.stitch``, ``sensitivity.scoring``)."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from ..calibration import CalibrationSet
from ..sensitivity.database import Database
from ..sensitivity.scoring import Scorer
from ..sensitivity.stitch import Stitcher
from .runtime import RETRIES, Cluster, WorkerDied, fault_point, gather, worker_threads


class _ScoringActor:
    """One worker's copy of the model, stitched from the database and scored on the calibration data."""

    def __init__(self, module: nn.Module, calibration: CalibrationSet, database: Database, selected: list[str],
                 batch_size: int) -> None:
        worker_threads()
        self.selected = selected
        self.stitcher = Stitcher(module, database)
        self.scorer = Scorer(module, calibration, batch_size)  # created dense, as the search process's

    def loss(self, levels: tuple[int, ...]) -> float:
        fault_point("search")
        self.stitcher.apply_levels(dict(zip(self.selected, levels, strict=True)))
        return self.scorer.loss()


class ScoringPool:
    """``losses(levels)``: the calibration loss of each plan (grid level per selected layer), computed by
    ``width`` actors (``cluster.width``), returned in order. The actors start at the first call (a resumed,
    finished search needs none). When one's process dies, the actors are started afresh and the plans scored
    again, once (``runtime.RETRIES``; Ray's own actor restarts would warn about arguments in the object store)."""

    def __init__(self, cluster: Cluster, module: nn.Module, calibration: CalibrationSet, database: Database,
                 selected: list[str], batch_size: int) -> None:
        self.width = cluster.width
        self._parts = (module, calibration, database, selected, batch_size)
        self._actors: list[Any] = []
        self._shared: list[Any] = []  # the actors' arguments, put into the object store once
        self._restarts = 0

    def start(self) -> None:
        """Start the actors now (the first ``losses`` call does otherwise)."""
        if not self._actors:
            self._start()
            import ray

            ray.get([actor.__ray_ready__.remote() for actor in self._actors])

    def close(self) -> None:
        """Stop the actors now (idle actors hold memory; a later ``losses`` starts them again)."""
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []

    def _start(self) -> None:
        import ray

        module, calibration, database, selected, batch_size = self._parts
        cpu_module = module if next(module.parameters()).device.type == "cpu" else copy.deepcopy(module).cpu()
        if not self._shared:
            self._shared = [ray.put(cpu_module), ray.put(calibration.to_cpu()), ray.put(database)]
        for old in self._actors:
            ray.kill(old)
        actor = ray.remote(num_cpus=1)(_ScoringActor)
        self._actors = [actor.remote(*self._shared, selected, batch_size) for _ in range(self.width)]

    def losses(self, plans: list[tuple[int, ...]]) -> list[float]:
        """The loss of every plan, in order. Raises SpdyError when an actor fails (``runtime.gather``)."""
        if not self._actors:
            self._start()
        while True:
            refs = [self._actors[i % len(self._actors)].loss.remote(levels) for i, levels in enumerate(plans)]
            try:
                return [float(loss) for loss in gather(refs, "scoring search candidates")]
            except WorkerDied:
                if self._restarts >= RETRIES:
                    raise
                self._restarts += 1
                self._start()
