"""Keep SparseML's modifier log in the run's output folder instead of ./sparse_logs."""

from __future__ import annotations

import logging
from pathlib import Path


def route_sparseml_logs(out_dir: Path, rank: int = 0) -> Path:
    """Send SparseML's modifier-level log to ``out_dir/sparseml[-rankN].log`` (call before applying a recipe)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("sparseml.log" if rank == 0 else f"sparseml-rank{rank}.log")
    logger = logging.getLogger("sparseml.pytorch.utils.logger")
    for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
        logger.removeHandler(handler)
        handler.close()
    logger.addHandler(logging.FileHandler(path, delay=True))
    return path
