"""``report``: a recipe and its profile as an HTML page with plots, in one self-contained folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpdyError
from ..files import check_parent_folders
from ..profile import Profile
from ..profile.store import hardware_root


@dataclass(kw_only=True, frozen=True)
class ReportRequest:
    """The recipe to show, the folder to write, and its profile (None: the one the recipe's metadata names,
    looked up in ``hw_root`` and the local profile cache)."""

    recipe: Path
    output: Path
    profile: Path | None = None
    hw_root: Path | None = None  # None: ``profile.store.hardware_root()`` ($SPDY_RECIPES_HW_ROOT or recipes/hardware)
    force: bool = False
    measured: dict | None = None  # a measurement to show instead of the recipe's (``report.view.build_view``)
    notes: tuple[str, ...] = ()  # shown on the page, e.g. that the measurement is from another machine
    loaded: Profile | None = None  # the profile file's content, when the caller holds it (not read again)

    def check(self) -> None:
        """SpdyError when the output is no folder name, a file or a link, an existing report without
        ``force``, or a folder holding anything a report does not write (``report.page.FILES``: never
        replaced, even with ``force``)."""
        from ..report.page import FILES

        out = self.output
        check_parent_folders(out, "the report folder")
        if not out.name:
            raise SpdyError(f"give a folder name for the report, not {str(out)!r}")
        if out.is_symlink():
            raise SpdyError(f"{out} is a link; give the folder itself")
        if out.exists() and not out.is_dir():
            raise SpdyError(f"{out} is a file; give a folder for the report")
        entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        others = [name for name in entries if name not in FILES or not (out / name).is_file()]
        if others:
            raise SpdyError(f"{out} holds files a report does not write ({', '.join(others[:3])}); give a new or "
                            "empty folder")
        if entries and not self.force:
            raise SpdyError(f"{out} already holds a report (use --force to replace it)")


def report(request: ReportRequest, *, checked: bool = False) -> Path:
    """Write the report of ``request.recipe`` (``report.view.build_view``, ``report.page.write_report``)
    and return its ``index.html``. Raises SpdyError on a bad output folder, a recipe this tool did not
    write, or a missing or mismatched profile; nothing is written then. ``checked``: the caller ran
    ``request.check()`` already (before its timing), so it is not run again."""
    from ..report.page import write_report
    from ..report.view import build_view

    if not checked:
        request.check()
    hw_root = hardware_root(str(request.hw_root) if request.hw_root else None)
    view = build_view(request.recipe, request.profile, hw_root, request.measured, request.notes, request.loaded)
    return write_report(view, request.output)


def inspect(path: str) -> str:
    """A summary of a profile (.json) or a recipe (.yaml/.md) (``report.inspect_file``). Raises SpdyError on an
    unreadable or foreign file."""
    from ..report import inspect_file

    return inspect_file(path)
