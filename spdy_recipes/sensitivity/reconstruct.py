"""Layer-wise reconstruction: after a magnitude mask, re-fit the kept weights to the dense layer's outputs.

Each output row is a least-squares problem on its kept inputs: minimise (w' - w) H (w' - w)ᵀ with the
pruned entries of w' held at zero, H = X Xᵀ the layer's input second moment. We start from the Optimal
Brain Surgeon update with the mask fixed in advance, applied column by column with one Cholesky factor
of the inverse Hessian (as in SparseGPT), then finish with a few conjugate-gradient steps on the masked
normal equations of all rows at once, which reach the exact per-row solution (the OBS pass alone leaves
the already visited kept columns un-refitted). Why this and not AdaPrune's gradient descent: no learning
rate or epochs, one Cholesky per layer shared by every sparsity level, and a few rows·d² multiply-adds
per level as matrix products, which 2 CPU cores do in seconds for ResNet50-sized layers; AdaPrune needs
hundreds of optimiser steps per layer and level.
"""

from __future__ import annotations

import torch

BLOCK = 128  # columns updated lazily together: the inner loop touches a block, a matrix product the rest
DEFAULT_DAMPING = 0.01  # fraction of the mean diagonal added to the Hessian: keeps it invertible
REFINE_STEPS = 4  # conjugate-gradient steps after the OBS pass (measured: 2-5 reach the exact solution)


class LayerReconstructor:
    """Re-fits one layer's kept weights against its dense outputs on calibration inputs."""

    def __init__(self, hessian: torch.Tensor, damping: float = DEFAULT_DAMPING) -> None:
        self.hessian = hessian.float()
        damped = hessian.double().clone()
        damped.diagonal().add_(damping * float(damped.diagonal().mean()) + 1e-12)
        self.damped = damped.float()
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(damped))
        self.upper = torch.linalg.cholesky(inverse, upper=True).float()

    def reconstruct(self, matrix: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``matrix`` (rows x in) with the entries outside ``keep`` zeroed and the rest re-fitted."""
        weights = matrix.float().clone()
        pruned = ~keep
        columns = weights.shape[1]
        for start in range(0, columns, BLOCK):
            end = min(start + BLOCK, columns)
            block = weights[:, start:end].clone()
            factor = self.upper[start:end, start:end]
            errors = torch.zeros_like(block)
            for j in range(end - start):
                removed = block[:, j] * pruned[:, start + j]
                error = removed / factor[j, j]
                block[:, j:] -= error[:, None] * factor[j, j:][None, :]
                block[:, j].masked_fill_(pruned[:, start + j], 0.0)
                errors[:, j] = error
            weights[:, start:end] = block
            weights[:, end:] -= errors @ self.upper[start:end, end:]
        return self._refine(matrix.float(), weights, keep.float())

    def _refine(self, dense: torch.Tensor, start: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Conjugate gradient on every row's masked normal equations, from the OBS solution."""
        solution = start
        residual = ((dense - solution) @ self.damped) * keep
        direction = residual.clone()
        norm = (residual * residual).sum(dim=1, keepdim=True)
        for _ in range(REFINE_STEPS):
            product = (direction @ self.damped) * keep
            step = norm / (direction * product).sum(dim=1, keepdim=True).clamp_min(1e-30)
            solution = solution + step * direction
            residual = residual - step * product
            new_norm = (residual * residual).sum(dim=1, keepdim=True)
            direction = residual + new_norm / norm.clamp_min(1e-30) * direction
            norm = new_norm
        return solution

    def relative_error(self, dense: torch.Tensor, pruned: torch.Tensor) -> float:
        """Squared output error over squared dense output on the calibration inputs (both rows x in)."""
        delta = pruned - dense
        error = float(((delta @ self.hessian) * delta).sum())
        return error / max(float(((dense @ self.hessian) * dense).sum()), 1e-30)
