"""Engine work in a child process: a crash in the engine's native code (a compiler assertion, a segfault)
ends the child, not the command, and becomes one ``error:`` line.

One long-lived child (``concurrent.futures.ProcessPoolExecutor`` with a single forked worker) serves every
call, so the engine library is imported once; this isolates, it does not parallelise (timings must not share
the machine). The worker is forked, not spawned: a spawned one re-imports the caller's main script, which
breaks scripts that call the library without an ``if __name__ == "__main__"`` guard. The child's standard
error goes to a log file, which the error line names: a native crash prints pages of stack trace there
instead of on the user's terminal.
"""

from __future__ import annotations

import atexit
import faulthandler
import multiprocessing
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from ..errors import SpdyError

T = TypeVar("T")
_pool: ProcessPoolExecutor | None = None
_log_path: str | None = None


class EngineCrashed(SpdyError):
    """The engine's process died while it compiled or ran a model."""


def _redirect_stderr(path: str) -> None:
    """In the child: standard error (and the engine's native output) to ``path``."""
    os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    os.dup2(handle, 2)
    os.close(handle)
    if faulthandler.is_enabled():  # (pytest enables it on the inherited descriptor): into the log as well, by
        faulthandler.enable(file=2)  # descriptor (sys.stderr may be a wrapper without one, as under CliRunner)


def _executor() -> ProcessPoolExecutor:
    global _pool, _log_path
    if _pool is None:
        handle, _log_path = tempfile.mkstemp(prefix="spdy-engine-", suffix=".log")
        os.close(handle)
        _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                                    initializer=_redirect_stderr, initargs=(_log_path,))
    return _pool


def stop(keep_log: bool = False) -> None:
    """End the child (at exit, after a crash, or when a wait was interrupted) and remove its log unless
    ``keep_log``; the next call starts another."""
    global _pool, _log_path
    pool, _pool = _pool, None
    log, _log_path = _log_path, None
    if pool is not None:
        for process in list(getattr(pool, "_processes", {}).values()):  # (no public way to end a busy worker)
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
    if log and not keep_log:
        Path(log).unlink(missing_ok=True)


atexit.register(stop)


def worker_cpu_s() -> float:
    """CPU seconds the engine's live child process has used (0 when there is none): our own work, which a
    busy-machine check must not count as another process's."""
    import psutil

    total = 0.0
    for pid in list((getattr(_pool, "_processes", None) or {}).keys()):
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:  # ended meanwhile
            continue
        total += times.user + times.system
    return total


def run_isolated(function: Callable[..., T], *args: Any, what: str) -> T:
    """``function(*args)`` in the engine's child process (``function`` and its arguments must pickle).

    Raises EngineCrashed (one line, naming ``what`` and the child's log) when the child dies; exceptions
    ``function`` raises come back as they are."""
    future = _executor().submit(function, *args)
    try:
        return future.result()
    except BrokenProcessPool:
        log = _log_path
        stop(keep_log=True)
        raise EngineCrashed(f"the engine crashed while {what} (its process ended; its output is in {log}): the "
                            "engine cannot run this graph here") from None
    except (KeyboardInterrupt, SystemExit):
        stop()  # Ctrl-C or SIGTERM while the child works: do not leave it running
        raise
