"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""

import functools
import sys


class SpdyError(Exception):
    """A user-facing error: bad input, a mismatch, or an infeasible request."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first non-empty line (its type's name when it has none): how a
    library's multi-line error text goes into a one-line SpdyError."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def warn(message: str) -> None:
    """A one-line warning on stderr: the command goes on."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def fail_cleanly(command):
    """Decorate a command: a SpdyError, or an OSError from the file system (a path that is a folder, a
    folder that cannot be written), becomes ``error: ...`` on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SpdyError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(1)
        except OSError as exc:
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            print(f"error: {exc.strerror or exc}{where}", file=sys.stderr, flush=True)
            sys.exit(1)

    return wrapper
