"""Warnings a profile carries: curves that are not monotone, kernel switches, noisy levels."""

from __future__ import annotations

from .schema import MEDIAN, LayerTimes, quantiles

NOISY_LEVEL = 0.05  # relative max-min spread of the whole-model time across repeats
MONOTONE_FLOOR = 0.02  # a layer slower at a sparser level by less than this fraction is within the noise


def non_monotone_levels(layer: LayerTimes, floor: float = MONOTONE_FLOOR) -> list[int]:
    """Levels where the layer got slower than at the previous (less sparse) level by more than the noise, in its
    measured medians (before ``LayerTimes.analysed`` smooths them across levels)."""
    medians, spreads = quantiles(layer.samples_ms, MEDIAN), layer.spread_ms
    return [
        k for k in range(1, len(medians))
        if medians[k] - medians[k - 1] > max(spreads[k], spreads[k - 1], floor * medians[k - 1])
    ]


def kernel_switches(layer: LayerTimes) -> list[int]:
    """Levels where the engine runs the layer with another kind of kernel than at the previous level."""
    return [k for k in range(1, len(layer.kernels)) if layer.kernels[k] != layer.kernels[k - 1]]


def profile_flags(layers: list[LayerTimes], level_spread: list[float]) -> dict:
    """The flags recorded in a profile (level indices refer to the grid)."""
    return {
        "non_monotone": {layer.name: levels for layer in layers if (levels := non_monotone_levels(layer))},
        "kernel_switch": {layer.name: levels for layer in layers if (levels := kernel_switches(layer))},
        "noisy_levels": [k for k, spread in enumerate(level_spread) if spread > NOISY_LEVEL],
    }
