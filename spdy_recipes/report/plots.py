"""The report's PNG plots, drawn with matplotlib's Agg backend (no screen, no network).

Each function writes one PNG and returns the values it plotted, so that a page (and a test) can show
and check exactly what the picture shows.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .view import RecipeView  # noqa: E402

PRUNED, DENSE, MEASURED, CHOSEN = "#1f77b4", "#b0b0b0", "#d62728", "#ff7f0e"
PNG = {"dpi": 110, "metadata": {"Software": None}}  # no version stamp: the same numbers give the same file


def _png(figure) -> bytes:
    """The figure laid out and drawn as PNG bytes; the figure is closed."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **PNG)
    plt.close(figure)
    return buffer.getvalue()


def _save(figure, path: Path) -> None:
    path.write_bytes(_png(figure))


def layers_plot(view: RecipeView, path: Path) -> dict:
    """Per layer, in model order: the chosen sparsity (top) and the dense and pruned times in ms (bottom),
    with the in-context times verification measured as red crosses. Returns the plotted series."""
    rows = view.layers
    x = list(range(len(rows)))
    data: dict[str, list[Any]] = {"layers": [r.name for r in rows], "sparsity": [r.sparsity for r in rows],
            "dense_ms": [r.dense_ms for r in rows], "pruned_ms": [r.pruned_ms for r in rows],
            "in_context_ms": [r.in_context_ms for r in rows]}
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(max(8.0, 0.22 * len(rows) + 2), 6.5), sharex=True)
    top.bar(x, data["sparsity"], color=[PRUNED if r.pruned else DENSE for r in rows])
    top.set_ylim(0, 1)
    top.set_ylabel("sparsity (fraction)")
    top.set_title(f"{view.metadata.get('model')}: chosen sparsity per layer (grey: dense)")
    bottom.bar([i - 0.2 for i in x], data["dense_ms"], width=0.4, color=DENSE, label="dense")
    bottom.bar([i + 0.2 for i in x], data["pruned_ms"], width=0.4, color=PRUNED, label="at the chosen level")
    measured = [(i, ms) for i, ms in zip(x, data["in_context_ms"], strict=True) if ms is not None]
    if measured:
        bottom.scatter(*zip(*measured, strict=True), marker="x", color=MEASURED, zorder=3, label="in context (verify)")
    bottom.set_ylabel("time per call (ms)")
    bottom.legend(loc="upper right", fontsize=8)
    bottom.set_xticks(x)
    bottom.set_xticklabels([name.removesuffix(".weight") for name in data["layers"]], rotation=90, fontsize=6)
    _save(figure, path)
    return data


def sweeps_plot(view: RecipeView, path: Path, columns: int = 6) -> dict:
    """One small panel per layer: its time (ms) at every level of the profile's uniform sweep, the
    chosen level as an orange dot and the in-context time as a red cross. Returns the chosen points."""
    rows = view.layers
    lines = math.ceil(len(rows) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(2.3 * columns, 1.7 * lines), squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(rows):
            axis.axis("off")
            continue
        row = rows[index]
        axis.plot(view.grid, row.curve_ms, color=PRUNED if row.pruned else DENSE, linewidth=1)
        axis.scatter([view.grid[row.level]], [row.pruned_ms], color=CHOSEN, zorder=3, s=18)
        if row.in_context_ms is not None:
            axis.scatter([row.sparsity], [row.in_context_ms], color=MEASURED, marker="x", zorder=3, s=18)
        axis.set_title(row.name.removesuffix(".weight") + (f" [{row.block.split()[0]}]" if row.block else ""),
                       fontsize=6)
        axis.tick_params(labelsize=5)
        axis.set_xlim(0, 1)
    figure.suptitle("each layer's time (ms) against sparsity in the uniform sweep, every layer at that level "
                    "(orange: chosen; [Bn]: fusion block)", fontsize=9)
    _save(figure, path)
    return {"layers": [r.name for r in rows], "chosen_sparsity": [view.grid[r.level] for r in rows],
            "chosen_ms": [r.pruned_ms for r in rows]}


def search_plot(view: RecipeView, path: Path) -> dict | None:
    """The search's best calibration loss after each improvement, against candidates scored (the
    recipe's ``search.curve``); None, with nothing written, when the recipe records no search."""
    search = view.search
    if search is None:
        return None
    steps = [int(step) for step, _ in search["curve"]] + [int(search.get("candidates", 0))]
    losses = [float(loss) for _, loss in search["curve"]]
    losses.append(losses[-1])
    figure, axis = plt.subplots(figsize=(6, 3.2))
    axis.step(steps, losses, where="post", color=PRUNED)
    axis.axhline(float(search.get("prior_loss", losses[0])), color=DENSE, linestyle="--", label="SPDY prior alone")
    axis.set_xlabel("candidates scored")
    axis.set_ylabel(f"calibration loss ({search.get('loss')})")
    axis.set_title("search: best calibration loss so far")
    axis.legend(fontsize=8)
    _save(figure, path)
    return {"steps": steps, "best_loss": losses}


def speedup_plot(view: RecipeView, path: Path) -> dict:
    """Target, predicted (the profile's additive model) and measured speedup with its 95% interval."""
    target = view.target_speedup
    names = [f"guaranteed (q{view.quantile:.2f})", "predicted"]
    values = [view.guaranteed_speedup, view.predicted_speedup]
    errors, colours = [(0.0, 0.0), (0.0, 0.0)], [DENSE, PRUNED]
    measured = view.measured
    if measured:
        low = measured.speedup - measured.low if measured.low is not None else 0.0
        high = measured.high - measured.speedup if measured.high is not None else 0.0
        names.append("measured")
        values.append(measured.speedup)
        errors.append((low, high))
        colours.append(MEASURED)
    figure, axis = plt.subplots(figsize=(6, 1.2 + 0.45 * len(names)))
    y = list(range(len(names)))
    axis.errorbar(values, y, xerr=list(zip(*errors, strict=True)), fmt="none", ecolor="black", capsize=4)
    axis.scatter(values, y, color=colours, zorder=3, s=40)
    if target:
        axis.axvline(target, color=CHOSEN, linestyle="--", label=f"target {target:.2f}x")
        axis.legend(fontsize=8, loc="lower right")
    axis.set_yticks(y)
    axis.set_yticklabels(names)
    axis.set_xlabel("speedup over dense (x)")
    axis.set_ylim(-0.7, len(names) - 0.3)
    _save(figure, path)
    return {"names": names, "speedups": values, "target": target,
            "measured_interval": [measured.low, measured.high] if measured else None}


def tradeoff_plot(rows: list[dict], losses: dict[str, str] | None) -> tuple[bytes, dict]:
    """The speed/accuracy curve of ``entrypoints.tradeoff`` rows, one line per method: loss (held-out
    where there is one, else calibration; ``losses`` names each kind, None: no losses) against speedup
    (measured where measured, else predicted), and the overall sparsity against the same speedup.
    Returns the PNG's bytes and the plotted series."""
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != "dense"]
    usable = [r for r in rows if not r["note"] and r["method"] != "dense"]
    with_losses = losses is not None
    loss_key = "heldout_loss" if any(r["heldout_loss"] is not None for r in usable) else "calibration_loss"
    series = {}
    for method in methods:
        points = [r for r in usable if r["method"] == method]
        speed = [r["measured_speedup"] if r["measured_speedup"] is not None else r["predicted_speedup"]
                 for r in points]
        series[method] = {"speedup": speed, "sparsity": [r["sparsity"] for r in points],
                          "loss": [r[loss_key] for r in points] if with_losses else None}
    panels = 2 if with_losses else 1
    figure, axes_grid = plt.subplots(1, panels, figsize=(5.2 * panels, 3.8), squeeze=False)
    axes = list(axes_grid.flat)
    measured = any(r["measured_speedup"] is not None for r in usable)
    x_label = "measured speedup (x)" if measured else "predicted speedup (x)"
    for method, data in series.items():
        style = {"marker": "o", "linewidth": 2.2 if method == "spdy" else 1.2, "label": method}
        if with_losses:
            axes[0].plot(data["speedup"], data["loss"], **style)
        axes[-1].plot(data["speedup"], data["sparsity"], **style)
    if losses is not None:
        axes[0].set_xlabel(x_label)
        axes[0].set_ylabel(losses[loss_key])
        axes[0].set_title("loss after one-shot pruning (lower is better)")
        axes[0].legend(fontsize=8)
    axes[-1].set_xlabel(x_label)
    axes[-1].set_ylabel("weights pruned (fraction)")
    axes[-1].set_title("overall sparsity")
    axes[-1].legend(fontsize=8)
    return _png(figure), {"loss": loss_key if with_losses else None, "series": series}
