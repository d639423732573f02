"""When SparseML updates a pruning modifier's masks, and what M-FAC needs from the schedule and memory.

SparseML 1.8's rule (``ScheduledUpdateModifier.update_ready`` with ``epoch = step / steps_per_epoch``):
a modifier updates its masks at the first step whose epoch reaches ``start_epoch``, then at every step
whose epoch is at least ``update_frequency`` past the epoch of its previous update, and once more at
the first step that reaches ``end_epoch``. The last regular update may fall just before ``end_epoch``:
a 4-epoch recipe pruning from 0.4 to 3.0 every 0.5 updates at 2.9 and again at 3.0. M-FAC's scorer
buffers one gradient per step and refuses an update with fewer than ``num_grads`` buffered since the
previous one ("only 16 were collected from the expected 64"), so its shortest gap between updates,
not the update frequency, sets the fewest steps per epoch it can train with.
"""

from __future__ import annotations

import math
from itertools import pairwise

FLOAT_BYTES = 4  # M-FAC keeps gradients and Fisher blocks in float32


def mask_update_steps(start_epoch: float, end_epoch: float, update_frequency: float, steps_per_epoch: int,
                      total_steps: int) -> list[int]:
    """The optimizer steps (0-based) at which SparseML updates a pruning modifier's masks."""

    def first_reaching(epoch: float) -> int:  # the first step with step / steps_per_epoch >= epoch, as floats compare
        step = max(0, math.ceil(epoch * steps_per_epoch) - 1)
        while step / steps_per_epoch < epoch:
            step += 1
        return step

    steps: list[int] = []
    step, end = first_reaching(start_epoch), first_reaching(end_epoch)
    while step < total_steps:
        steps.append(step)
        if step >= end:
            break
        epoch = step / steps_per_epoch
        step = min(end, max(step + 1, first_reaching(epoch + update_frequency)))
    return steps


def fewest_gradients(start_epoch: float, end_epoch: float, update_frequency: float, steps_per_epoch: int,
                     total_steps: int) -> int:
    """The fewest gradients M-FAC buffers before any of its mask updates (one per step since the previous
    update; the first update counts from step 0, its own step included). 0 if no update happens."""
    steps = mask_update_steps(start_epoch, end_epoch, update_frequency, steps_per_epoch, total_steps)
    if not steps:
        return 0
    return min([steps[0] + 1] + [b - a for a, b in pairwise(steps)])


def min_steps_per_epoch(start_epoch: float, end_epoch: float, update_frequency: float, epochs: float,
                        num_grads: int, limit: int = 1_000_000) -> int | None:
    """The fewest steps per epoch at which every M-FAC mask update of the schedule has ``num_grads``
    gradients; None when no count up to ``limit`` has (e.g. pruning that starts at epoch 0)."""
    gaps = [start_epoch, update_frequency, (end_epoch - start_epoch) % update_frequency or update_frequency]
    shortest = min(gap for gap in gaps if gap > 0) if any(gap > 0 for gap in gaps) else 0.0
    if shortest <= 0:
        return None
    steps = max(1, math.floor((num_grads - 1) / shortest * 0.9))  # below the first fit: each gap holds ~gap x steps
    while steps <= limit:
        total = max(1, math.ceil(round(epochs * steps, 6)))
        if fewest_gradients(start_epoch, end_epoch, update_frequency, steps, total) >= num_grads:
            return steps
        steps += 1
    return None


def mfac_memory_bytes(pruned_params: int, num_grads: int, fisher_block_size: int) -> int:
    """M-FAC's working memory for ``pruned_params`` weights (bytes): the gradient buffer (num_grads x
    params) plus the blocked inverse Fisher (params x block size), both float32 (SparseML's
    ``MFACPruningModifier``; Frantar et al., "M-FAC", NeurIPS 2021, section 4)."""
    return FLOAT_BYTES * pruned_params * (num_grads + fisher_block_size)
