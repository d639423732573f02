"""Progress of long phases with the time left: a tqdm bar on a terminal, else one log line per step."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress(total: int, label: str, log: Callable[[str], None]) -> Iterator[Callable[[str], None]]:
    """Yields ``step(what)``, to call after each of ``total`` steps. On a terminal it advances a tqdm bar
    (elapsed and remaining time from the mean step so far); otherwise (CI logs, pipes) it logs
    ``[label] i/total what (E s elapsed, about R s left)``."""
    from tqdm import tqdm

    started = time.monotonic()
    with tqdm(total=total, desc=f"[{label}]", file=sys.stderr, disable=None, leave=False) as bar:
        done = 0

        def step(what: str = "") -> None:
            nonlocal done
            done += 1
            bar.set_postfix_str(what, refresh=False)
            bar.update(1)
            if bar.disable:
                elapsed = time.monotonic() - started
                left = elapsed / done * (total - done)
                log(f"[{label}] {done}/{total} {what} ({elapsed:.0f} s elapsed, about {left:.0f} s left)".replace(
                    "  ", " "))

        yield step
