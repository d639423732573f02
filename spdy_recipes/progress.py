"""Progress of long phases with the time left: a tqdm bar on a terminal, else one log line per step."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Log = Callable[[str], None]  # where a long phase reports its lines (stderr for the CLI)


@contextmanager
def progress(total: int, label: str, log: Log,
             weighted: bool = False) -> Iterator[Callable[..., None]]:
    """Yields ``step(what, amount=1)``, to call after each piece of work, ``total`` in all. The time left
    is the time so far per unit of work done times the work left, so steps of unequal cost (``weighted``:
    e.g. a layer's weights) give ``amount``. On a terminal it advances a tqdm bar; otherwise (CI logs,
    pipes) it logs ``[label] i/total what (E s elapsed, about R s left)`` (a percentage when weighted)."""
    from tqdm import tqdm

    started = time.monotonic()
    with tqdm(total=total, desc=f"[{label}]", file=sys.stderr, disable=None, leave=False,
              unit_scale=weighted) as bar:
        done = 0

        def step(what: str = "", amount: int = 1) -> None:
            nonlocal done
            done += amount
            bar.set_postfix_str(what, refresh=False)
            bar.update(amount)
            if bar.disable:
                elapsed = time.monotonic() - started
                left = elapsed / done * (total - done)
                count = f"{done / total:.0%}" if weighted else f"{done}/{total}"
                log(" ".join(part for part in (f"[{label}]", count, what) if part)
                    + f" ({elapsed:.0f} s elapsed, about {left:.0f} s left)")

        yield step
