"""Command-line usage mistakes are one ``error:`` line with a pointer to --help, exit status 2."""

from __future__ import annotations

import pytest

from .cli_helpers import run_cli


@pytest.mark.parametrize("args, message", [
    (["generate", "--nope"], "No such option '--nope'"),
    (["solve", "--profile", "p.json", "--speedup", "fast"], "Invalid value for '--speedup'"),
    (["solve", "--speedup", "1.5"], "Missing option '--profile'"),
    (["nosuch"], "No such command 'nosuch'"),
])
def test_a_usage_mistake_is_one_error_line_with_exit_2(args, message):
    code, stdout, stderr = run_cli(args)
    assert code == 2
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "--help)" in lines[0] and "Usage:" not in stdout + stderr


def test_help_and_version_still_exit_0():
    code, stdout, _ = run_cli(["solve", "--help"])
    assert code == 0 and "Usage:" in stdout and "--speedup" in stdout
    code, stdout, _ = run_cli(["--version"])
    assert code == 0 and "spdy-recipe, version" in stdout
