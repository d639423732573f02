"""The engine's child process: a native crash there is one error, and the next call gets a fresh child."""

from __future__ import annotations

import io
import os
import signal
import sys

import pytest

from spdy_recipes.errors import SpdyError
from spdy_recipes.profile import engine_process
from spdy_recipes.profile.engine_process import EngineCrashed, run_isolated


def _crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)  # what a native assertion or segfault in the engine does to its process


def _pid_and(value: int) -> tuple[int, int]:
    return os.getpid(), value * 2


def _fail() -> None:
    raise ValueError("an ordinary error of the engine")


def test_a_crash_in_the_child_is_one_error_naming_its_log_and_the_next_call_works():
    before, doubled = run_isolated(_pid_and, 21, what="doubling")
    assert doubled == 42 and before != os.getpid()  # it ran in the child
    with pytest.raises(EngineCrashed) as caught:
        run_isolated(_crash, what="compiling model.onnx")
    message = str(caught.value)
    assert isinstance(caught.value, SpdyError) and "\n" not in message
    assert message.startswith("the engine crashed while compiling model.onnx (its process ended; its output is in ")
    log = message.split("its output is in ")[1].split(")")[0]
    assert os.path.isfile(log)  # kept: the one place the crash's own words are
    os.unlink(log)
    after, doubled = run_isolated(_pid_and, 1, what="doubling")
    assert doubled == 2 and after not in (before, os.getpid())  # a fresh child


def test_an_ordinary_exception_comes_back_and_keeps_the_child():
    first, _ = run_isolated(_pid_and, 1, what="doubling")
    with pytest.raises(ValueError, match="an ordinary error of the engine"):
        run_isolated(_fail, what="failing")
    second, _ = run_isolated(_pid_and, 1, what="doubling")
    assert first == second


def test_stopping_removes_the_log_of_a_child_that_did_not_crash():
    run_isolated(_pid_and, 1, what="doubling")
    log = engine_process._log_path
    assert log and os.path.isfile(log)
    engine_process.stop()
    assert not os.path.exists(log)


def test_the_child_starts_when_standard_error_has_no_descriptor(monkeypatch):
    """Under click's CliRunner (the tests' way of running the CLI) sys.stderr is a wrapper without a file
    descriptor: a fresh child must still start (it once failed there, and every profile ended in 'crashed')."""
    engine_process.stop()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    pid, doubled = run_isolated(_pid_and, 2, what="doubling")
    assert doubled == 4 and pid != os.getpid()
