"""One process or several under ``torchrun`` (gloo on CPU): rank, data sharding, DDP and replica checks."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: its rank among ``world_size`` processes."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_environment(cls) -> Distributed:
        """Join the process group that ``torchrun`` set up (gloo), or stand alone."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
        return cls(int(os.environ.get("RANK", "0")), world_size)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP around ``model`` when distributed (call after the recipe has been applied)."""
        return nn.parallel.DistributedDataParallel(model) if self.active else model

    def sampler(self, dataset: Dataset, shuffle: bool, seed: int) -> DistributedSampler | None:
        """A sampler giving this rank its shard, or None in one process."""
        if not self.active:
            return None
        return DistributedSampler(dataset, self.world_size, self.rank, shuffle=shuffle, seed=seed)

    def mean(self, value: float) -> float:
        """The mean of ``value`` over all processes."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor) / self.world_size

    def replicas_agree(self, model: nn.Module) -> bool:
        """Whether every process holds bit-identical parameters (DDP keeps masks and values in sync; buffers
        such as BatchNorm statistics are left out, each process updates them from its own shard)."""
        if not self.active:
            return True
        digest = hashlib.sha256()
        for tensor in model.parameters():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digests: list[str | None] = [None] * self.world_size
        dist.all_gather_object(digests, digest.hexdigest())
        return len(set(digests)) == 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group once every process has finished its work: a process that leaves while
        another still runs (rank 0 writing the model) can abort in gloo's teardown ("terminate called
        without an active exception", exit code -6)."""
        if self.active and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


@contextmanager
def distributed_run() -> Iterator[Distributed]:
    """This process's place in the run, closed collectively on success. After a failure the process
    leaves without the collective teardown (its peers would wait for it); torchrun then stops them."""
    place = Distributed.from_environment()
    yield place
    place.close()
