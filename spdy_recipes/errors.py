"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class SpdyError(Exception):
    """A user-facing error: bad input, a mismatch, or an infeasible request."""


def warn(message: str) -> None:
    """A one-line warning on stderr: the command goes on."""
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)
