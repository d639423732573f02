"""SPDY's search over per-layer sensitivity coefficients, seeded and resumable from a checkpoint.

A candidate is a coefficient per layer; the DP turns it into a profile within the latency budget (layer
l at level i costs c_l · prior_i) and the objective scores that profile on calibration data. First
random candidates (the first is all ones, the plain prior), then first-improvement local search that
re-draws k random coefficients, k starting at ``layer_fraction`` of the layers and dropping by one after
``max_failures`` candidates in a row fail to improve. After every candidate the whole state, random
generator included, goes to the checkpoint, so an interrupted search resumes exactly where it stopped.

An objective that scores ``width`` plans at once (Ray actors, ``cluster.scoring``) gets the next ``width``
candidates together, drawn as if none of them improved; they are then taken in order, as one after another,
and the first whose draw would have been another (an improvement changed the incumbent or the schedule)
sends the rest back to be drawn again. With a candidate budget, the candidates, the chosen plan and the
checkpoint are therefore the same for every width, given the same losses (Ray's workers compute them with one
torch thread each, whatever their number); a minutes budget depends on speed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import SpdyError
from ..files import atomic_write_json, read_json


class Objective(Protocol):
    width: int  # plans ``losses`` scores at once (1: one after another)

    def levels(self, coefficients: npt.NDArray[np.float64]) -> tuple[int, ...]:
        """The DP's grid level per layer for these coefficients (always within the budget)."""

    def losses(self, plans: list[tuple[int, ...]]) -> list[float]:
        """Calibration loss of the model stitched at each plan's levels, in order."""


@dataclass(kw_only=True, frozen=True)
class SearchSettings:
    """How the search runs; the budget (``steps`` candidates and/or ``minutes``) is not part of its identity."""

    seed: int = 0
    steps: int | None = 150
    minutes: float | None = None
    random_inits: int = 25
    max_failures: int = 100
    layer_fraction: float = 0.1

    def identity(self) -> dict[str, float]:
        return {"seed": self.seed, "random_inits": self.random_inits, "max_failures": self.max_failures,
                "layer_fraction": self.layer_fraction}


def parse_budget(text: str) -> tuple[int | None, float | None]:
    """``300`` (candidates) or ``10m`` (minutes) into (steps, minutes)."""
    value = text.strip().lower()
    try:
        if value.endswith(("m", "min")):
            minutes = float(value.rstrip("min"))
            if minutes > 0:
                return None, minutes
        elif int(value) > 0:
            return int(value), None
    except ValueError:
        pass
    raise SpdyError(f"bad --search-budget {text!r}: expected a number of candidates (300) or minutes (10m)")


@dataclass(kw_only=True)
class SearchState:
    """Everything the search needs to continue: JSON-serialisable."""

    key: str
    layers: int
    step: int = 0
    elapsed_s: float = 0.0
    inits_done: int = 0
    k: int = 0
    failures: int = 0
    best: list[float] | None = None
    best_levels: list[int] | None = None
    best_loss: float = math.inf
    curve: list[list[float]] = field(default_factory=list)  # [step, best loss] after each improvement
    scores: dict[str, float] = field(default_factory=dict)  # loss by profile, so repeats cost nothing
    rng: Mapping[str, Any] = field(default_factory=dict)  # the generator's bit_generator.state
    finished: bool = False


def _load_state(path: Path, key: str) -> SearchState | None:
    if not path.is_file():
        return None
    data = read_json(path, "search checkpoint")
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    try:
        return SearchState(**data)
    except TypeError:
        raise SpdyError(f"malformed search checkpoint {path}; delete it to start again") from None


def search(objective: Objective, layers: int, settings: SearchSettings, key: str, checkpoint: Path | None,
           progress: Callable[[SearchState], None] = lambda _: None) -> SearchState:
    """Run (or resume) the search until its budget is spent or it finishes; returns the final state."""
    state = _load_state(checkpoint, key) if checkpoint else None
    if state is None:
        rng = np.random.default_rng(settings.seed)
        state = SearchState(key=key, layers=layers, k=max(1, round(settings.layer_fraction * layers)))
    else:
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng
    started = time.monotonic() - state.elapsed_s
    spare: dict[str, float] = {}  # losses scored ahead whose candidates were drawn again
    while not state.finished and not _spent(state, settings):
        left = settings.steps - state.step if settings.steps is not None else objective.width
        batch = _draw(state, settings, rng, max(1, min(objective.width, left)))
        if not batch:  # the local search has no incumbent: no initial candidate had a finite loss
            state.finished = True
            break
        plans = [objective.levels(draw.candidate) for draw in batch]
        labels = [",".join(map(str, levels)) for levels in plans]
        todo = {label: levels for label, levels in zip(labels, plans, strict=True)
                if label not in state.scores and label not in spare}
        spare.update(zip(todo, objective.losses(list(todo.values())), strict=True))
        incumbent = state.best
        for draw, levels, label in zip(batch, plans, labels, strict=True):
            if draw.schedule != (state.inits_done, state.k) or (draw.from_incumbent and state.best is not incumbent):
                break  # drawn for a state the search is not in: draw it again from this one
            if label not in state.scores:
                state.scores[label] = spare.pop(label)
            _record(state, settings, draw.candidate, levels, state.scores[label])
            state.rng = draw.rng
            state.elapsed_s = time.monotonic() - started
            if checkpoint:
                atomic_write_json(checkpoint, asdict(state))
            progress(state)
            if state.finished or _spent(state, settings):
                break
        rng.bit_generator.state = state.rng
    return state


@dataclass(frozen=True)
class _Draw:
    """A candidate drawn ahead: the schedule it was drawn for ((inits done, k)), whether it re-draws the
    incumbent's coefficients, and the generator's state after its draws."""

    candidate: npt.NDArray[np.float64]
    schedule: tuple[int, int]
    from_incumbent: bool
    rng: Mapping[str, Any]


def _draw(state: SearchState, settings: SearchSettings, rng: np.random.Generator, count: int) -> list[_Draw]:
    """The next ``count`` candidates, each drawn from the state the search reaches if none before it improves
    (the draws themselves depend only on the schedule, not on the losses)."""
    ahead = replace(state, scores={}, curve=[])
    draws = []
    for _ in range(count):
        if ahead.finished:
            break
        schedule, from_incumbent = (ahead.inits_done, ahead.k), ahead.inits_done >= settings.random_inits
        if from_incumbent and ahead.best is None:  # no incumbent yet (the first local step waits for the inits)
            break
        candidate = _next_candidate(ahead, settings, rng)
        draws.append(_Draw(candidate, schedule, from_incumbent, rng.bit_generator.state))
        _record(ahead, settings, candidate, (), math.inf)
    return draws


def _spent(state: SearchState, settings: SearchSettings) -> bool:
    over_steps = settings.steps is not None and state.step >= settings.steps
    over_time = settings.minutes is not None and state.elapsed_s >= settings.minutes * 60
    return over_steps or over_time


def _next_candidate(state: SearchState, settings: SearchSettings, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    if state.inits_done == 0:
        return np.ones(state.layers)
    if state.inits_done < settings.random_inits:
        return rng.uniform(size=state.layers)
    candidate = np.array(state.best)
    chosen = rng.integers(0, state.layers, size=state.k)
    candidate[chosen] = rng.uniform(size=state.k)
    return candidate


def _record(state: SearchState, settings: SearchSettings, candidate: npt.NDArray[np.float64], levels: tuple[int, ...],
            loss: float) -> None:
    """Count the step, keep the candidate if it strictly improves, and advance the schedule."""
    state.step += 1
    improved = loss < state.best_loss
    if improved:
        state.best, state.best_levels, state.best_loss = candidate.tolist(), list(levels), loss
        state.curve.append([state.step, loss])
    if state.inits_done < settings.random_inits:
        state.inits_done += 1
        return
    state.failures = 0 if improved else state.failures + 1
    if state.failures >= settings.max_failures:
        state.k, state.failures = state.k - 1, 0
        state.finished = state.k == 0
