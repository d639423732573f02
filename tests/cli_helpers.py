"""Running the CLI in-process, and checking that bad input fails cleanly."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from spdy_recipes.cli import main

from .conftest import CNN_SPEC

CNN_ARGS = ["--model", CNN_SPEC, "--input-shape", "3,128,128", "--batch-size", "8"]


def run_cli(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def skip_when_too_busy(code: int, stderr: str, out_path: Path) -> None:
    """A measuring command that refused to act on a busy machine's timings (``verify.loop.BUSY_LIMIT``) answered
    rightly: check that it said so in one line and wrote nothing, then skip the rest of the test, saying why."""
    import pytest

    if code != 0 and "error: machine too busy" in stderr:
        assert not out_path.exists()
        line = next(line for line in stderr.splitlines() if line.startswith("error: machine too busy"))
        pytest.skip(f"the machine was too busy to measure here ({line[len('error: '):]})")


def assert_clean_failure(args: list[str], message: str, out_path: Path | None = None) -> str:
    """The command exits non-zero with exactly one ``error:`` line containing ``message``."""
    code, _, stderr = run_cli(args)
    assert code != 0
    lines = [line for line in stderr.strip().splitlines() if line.strip() and not line.startswith(("[", "warning:"))]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert message in lines[0], lines[0]
    if out_path is not None:
        assert not out_path.exists()
    return lines[0]


def measured_low(text: str) -> float:
    """The lower end of the measured interval that ``verify`` prints (``measured 1.52x (1.49-1.55)``)."""
    match = re.search(r"measured [0-9.]+x \(([0-9.]+)-[0-9.]+\)", text)
    assert match, text
    return float(match.group(1))


def measured_speedup(text: str) -> float:
    """The measured speedup that ``verify`` prints."""
    match = re.search(r"measured ([0-9.]+)x", text)
    assert match, text
    return float(match.group(1))
