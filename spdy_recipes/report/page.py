"""The report folder: ``index.html``, its PNG plots and ``report.json`` (every plotted value), written
atomically as one self-contained folder that opens offline."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from ..files import atomic_write_folder
from . import plots
from .view import RecipeView

TEMPLATE = "index.html.j2"
FILES = ("index.html", "report.json", "speedup.png", "layers.png", "sweeps.png", "search.png")  # all it writes


def render_page(view: RecipeView) -> str:
    """The report's HTML for ``view``; it refers to the plots by their file names in the same folder."""
    environment = jinja2.Environment(loader=jinja2.PackageLoader("spdy_recipes.report", "."),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.get_template(TEMPLATE).render(
        view=view,
        pruned=[row for row in view.layers if row.pruned],
        dense_rows=[row for row in view.layers if not row.pruned],
        has_in_context=any(row.in_context_ms is not None for row in view.layers),
        in_context_total=sum(row.in_context_ms or 0.0 for row in view.layers),
        search=view.search,
    )


def write_report(view: RecipeView, folder: str | Path) -> Path:
    """Write the report of ``view`` to ``folder`` (replacing an earlier report there) and return the path
    of its ``index.html``."""
    def fill(tmp: Path) -> None:
        plotted = {
            "speedup": plots.speedup_plot(view, tmp / "speedup.png"),
            "layers": plots.layers_plot(view, tmp / "layers.png"),
            "sweeps": plots.sweeps_plot(view, tmp / "sweeps.png"),
            "search": plots.search_plot(view, tmp / "search.png"),
        }
        (tmp / "report.json").write_text(json.dumps(plotted, indent=1) + "\n", encoding="utf-8")
        (tmp / "index.html").write_text(render_page(view), encoding="utf-8")

    return atomic_write_folder(folder, fill) / "index.html"
