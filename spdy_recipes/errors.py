"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class SpdyError(Exception):
    """A user-facing error: bad input, a mismatch, or an infeasible request."""
