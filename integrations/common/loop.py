"""A plain PyTorch training loop driven by a recipe: SparseML wraps the optimizer before DDP wraps the model."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from spdy_recipes.errors import SpdyError

from .distributed import Distributed
from .recipe import LoadedRecipe

StepLoss = Callable[[nn.Module, Any], torch.Tensor]
EpochEnd = Callable[[int, float], None]


def train_with_recipe(model: nn.Module, recipe: LoadedRecipe, optimizer: torch.optim.Optimizer,
                      loader: Iterable, steps_per_epoch: int, step_loss: StepLoss, dist: Distributed,
                      on_epoch_end: EpochEnd, log: Callable[[str], None], set_epoch: Callable[[int], None]
                      ) -> list[float]:
    """Train for the recipe's epochs and finalize its modifiers; return the mean loss of every epoch.

    ``model`` is the unwrapped model: the recipe's layer names are its names. ``set_epoch`` reshuffles
    the loader (a DistributedSampler's ``set_epoch``, or a no-op).
    """
    recipe.check_schedule(steps_per_epoch)
    manager = recipe.manager
    optimizer = manager.modify(model, optimizer, steps_per_epoch=steps_per_epoch)
    wrapped = dist.wrap(model)
    wrapped.train()
    total = recipe.total_steps(steps_per_epoch)
    epochs = math.ceil(total / steps_per_epoch)
    losses, step = [], 0
    for epoch in range(epochs):
        set_epoch(epoch)
        started, summed, count = time.perf_counter(), 0.0, 0
        for batch in loader:
            if step >= total:
                break
            loss = step_loss(wrapped, batch)
            if not torch.isfinite(loss):
                raise SpdyError(
                    f"the training loss became {loss.detach().item()} at epoch {epoch + 1}, step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            summed, count, step = summed + loss.detach().item(), count + 1, step + 1
        mean = dist.mean(summed / max(count, 1))
        losses.append(mean)
        if dist.is_main:
            log(f"epoch {epoch + 1}/{epochs}: loss {mean:.4f} ({count} steps, {time.perf_counter() - started:.1f} s)")
        on_epoch_end(epoch, mean)
    manager.finalize(model)
    return losses
