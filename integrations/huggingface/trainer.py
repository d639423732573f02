"""A ``transformers.Trainer`` that applies a SparseML recipe: the recipe wraps the optimizer, sets the learning
rate and the training length, and is finalized after training.

In transformers 4.40 ``_inner_training_loop`` builds the (sharded) train dataloader, then the optimizer, and
only then wraps the model in DDP, so ``manager.modify`` sees the plain model and the per-process step count.
"""

from __future__ import annotations

import torch
import transformers
from torch.utils.data import DataLoader

from ..common.recipe import LoadedRecipe


class RecipeLR(torch.optim.lr_scheduler.LRScheduler):
    """Leaves the learning rate to the recipe's modifiers and reports the one in use."""

    def get_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class RecipeTrainer(transformers.Trainer):
    """Train for the recipe's epochs with its pruning and learning-rate schedule.

    ``recipe`` must have been loaded on ``model`` (the unwrapped model the Trainer gets), so its layer
    names were checked before anything else happened.
    """

    def __init__(self, *args, recipe: LoadedRecipe, **kwargs):
        super().__init__(*args, **kwargs)
        self.recipe = recipe
        self.args.num_train_epochs = recipe.epochs
        self.args.max_steps = -1  # the recipe sets the length
        self.steps_per_epoch = 0

    def get_train_dataloader(self) -> DataLoader:
        """The loader the training loop iterates; notes its optimizer steps per epoch in this process."""
        loader = super().get_train_dataloader()
        self.steps_per_epoch = max(len(loader) // self.args.gradient_accumulation_steps, 1)
        return loader

    def create_optimizer(self):
        """The Trainer's optimizer (or the one passed in), wrapped by the recipe's manager on the plain model."""
        optimizer = super().create_optimizer()
        if not hasattr(optimizer, "wrapped_manager"):  # not yet a RecipeManagerStepWrapper
            self.recipe.check_schedule(self.steps_per_epoch)
            self.optimizer = self.recipe.manager.modify(self.model, optimizer, steps_per_epoch=self.steps_per_epoch)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        """A scheduler that follows the recipe, on the inner optimizer (torch schedulers reject the wrapper)."""
        if self.lr_scheduler is None:
            self.lr_scheduler = RecipeLR(self.optimizer.wrapped_optimizer)
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def train(self, *args, **kwargs):
        """Train, then finalize the recipe (masks removed, pruned weights stay zero)."""
        output = super().train(*args, **kwargs)
        self.recipe.manager.finalize(self.model)
        return output
