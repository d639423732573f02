"""``report``: a recipe and its profile as an HTML page with plots, in one self-contained folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpdyError
from ..profile.store import hardware_root


@dataclass(frozen=True)
class ReportRequest:
    """The recipe to show, the folder to write, and its profile (None: the one the recipe's metadata names,
    looked up in ``hw_root`` and the local profile cache)."""

    recipe: Path
    output: Path
    profile: Path | None = None
    hw_root: Path = field(default_factory=hardware_root)
    force: bool = False
    measured: dict | None = None  # a measurement to show instead of the recipe's (``report.view.build_view``)

    def check(self) -> None:
        """SpdyError when the output is a file, or an existing folder without ``force``, or a folder that
        holds something other than a report (never replaced, even with ``force``)."""
        out = self.output
        if out.exists() and not out.is_dir():
            raise SpdyError(f"{out} is a file; give a folder for the report")
        if out.is_dir() and any(out.iterdir()):
            if not (out / "index.html").is_file():
                raise SpdyError(f"{out} holds files that are not a report; give a new or empty folder")
            if not self.force:
                raise SpdyError(f"{out} already holds a report (use --force to replace it)")


def report(request: ReportRequest) -> Path:
    """Write the report of ``request.recipe`` (``report.view.build_view``, ``report.page.write_report``)
    and return its ``index.html``. Raises SpdyError on a bad output folder, a recipe this tool did not
    write, or a missing or mismatched profile; nothing is written then."""
    from ..report.page import write_report
    from ..report.view import build_view

    request.check()
    view = build_view(request.recipe, request.profile, request.hw_root, request.measured)
    return write_report(view, request.output)
