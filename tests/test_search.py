"""SPDY's search: seeded, within the latency budget for every candidate, and resumable after interruption."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from spdy_recipes.errors import SpdyError
from spdy_recipes.models import load_model
from spdy_recipes.sensitivity.setup import CalibrationSettings, prepare
from spdy_recipes.solve.objective import ProfileObjective
from spdy_recipes.solve.search import SearchSettings, parse_budget, search
from spdy_recipes.solve.settings import SolveSettings, best_reachable, solve

from .conftest import BERT_SEQ

QUANTILE = 0.9


@pytest.fixture(scope="module")
def setup(bert_profile, bert_spec, tmp_path_factory):
    """The tiny BERT on seeded random tokens: its recorded profile has 14 layers with sparse gains at several
    levels, so the DP gives many different plans to search among (the small CNN's AVX2 profile, two or three)."""
    profile, _ = bert_profile
    generator = torch.Generator().manual_seed(0)
    tokens = tmp_path_factory.mktemp("calibration") / "tokens.pt"
    ids = torch.randint(0, 1000, (24, *BERT_SEQ), generator=generator)
    torch.save({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, tokens)
    bundle = load_model(bert_spec, 8, BERT_SEQ)
    return prepare(bundle, profile.grid, profile.layer_names, CalibrationSettings(source=str(tokens), samples=16),
                   print)


def _speedup(profile):
    return 1 + 0.6 * (best_reachable(profile) - 1)


class Recording(ProfileObjective):
    """The real objective, remembering every profile it scored; optionally interrupted at one call."""

    def __init__(self, *args, interrupt_at=None):
        super().__init__(*args)
        self.scored, self.interrupt_at = [], interrupt_at

    def loss(self, levels):
        if len(self.scored) + 1 == self.interrupt_at:
            raise KeyboardInterrupt
        self.scored.append(levels)
        return super().loss(levels)


SETTINGS = SearchSettings(seed=3, steps=14, random_inits=5, max_failures=20)


def test_search_is_reproducible_and_every_candidate_meets_the_budget(setup, bert_profile):
    profile, _ = bert_profile
    speedup = _speedup(profile)
    runs = []
    for seed in (3, 3, 4):
        objective = Recording(setup, profile, speedup, QUANTILE)
        runs.append((search(objective, len(setup.selected), dataclasses.replace(SETTINGS, seed=seed), "k", None),
                     objective.scored))
    (first, scored), (second, _), (other, other_scored) = runs
    assert first.best == second.best and first.curve == second.curve and first.scores == second.scores
    assert other.scores != first.scores or other_scored != scored
    assert first.step == 14 and first.best_loss == min(first.scores.values())
    assert [c[1] for c in first.curve] == sorted((c[1] for c in first.curve), reverse=True)
    times = {layer.name: layer.times(QUANTILE) for layer in profile.layers}
    budget = profile.dense_ms / speedup - profile.fixed(QUANTILE)
    for levels in scored:  # every scored profile is within the budget on the conservative times
        conservative_ms = sum(times[name][level] for name, level in zip(setup.selected, levels, strict=True))
        assert conservative_ms <= budget * (1 + 1e-9)
    plan = solve(profile, speedup, SolveSettings(quantile=QUANTILE, coefficients=tuple(first.best)))
    assert plan.guaranteed_speedup >= speedup and [plan.levels[n] for n in setup.selected] == first.best_levels


def test_an_interrupted_search_resumes_exactly(setup, bert_profile, tmp_path):
    profile, _ = bert_profile
    speedup = _speedup(profile)
    whole = search(Recording(setup, profile, speedup, QUANTILE), len(setup.selected), SETTINGS, "k",
                   tmp_path / "whole.json")
    checkpoint = tmp_path / "cut.json"
    interrupted = Recording(setup, profile, speedup, QUANTILE, interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        search(interrupted, len(setup.selected), SETTINGS, "k", checkpoint)
    assert checkpoint.is_file() and len(interrupted.scored) == 2 and len(whole.scores) > 3
    resumed_objective = Recording(setup, profile, speedup, QUANTILE)
    resumed = search(resumed_objective, len(setup.selected), SETTINGS, "k", checkpoint)
    assert (resumed.best, resumed.curve, resumed.scores, resumed.step) == (whole.best, whole.curve, whole.scores,
                                                                          whole.step)
    assert len(resumed_objective.scored) + 2 == len(set(whole.scores))  # nothing scored twice
    # a checkpoint of other inputs (another key) is not resumed
    fresh = search(Recording(setup, profile, speedup, QUANTILE), len(setup.selected), SETTINGS, "other", checkpoint)
    assert fresh.key == "other" and fresh.step == SETTINGS.steps


def test_candidates_scored_several_at_a_time_give_the_search_of_one_at_a_time(setup, bert_profile):
    """An objective that scores ``width`` plans at once (Ray actors) gets them drawn ahead, as if none improved,
    and redrawn after an improvement or a schedule change: every width makes the same search, step for step."""
    profile, _ = bert_profile
    speedup = _speedup(profile)
    settings = SearchSettings(seed=5, steps=40, random_inits=4, max_failures=3, layer_fraction=0.3)
    states = {}
    for width in (1, 3, 8):
        objective = Recording(setup, profile, speedup, QUANTILE)
        objective.width = width
        states[width] = dataclasses.asdict(search(objective, len(setup.selected), settings, "k", None))
        states[width].pop("elapsed_s")
        if width == 8:
            assert len(objective.scored) > len(states[width]["scores"])  # it did score ahead, and redrew
    one = states[1]
    assert len(one["curve"]) >= 3 and one["k"] < round(0.3 * len(setup.selected))  # improvements and k drops
    assert states[3] == one and states[8] == one


def test_budget_parsing():
    assert parse_budget("300") == (300, None) and parse_budget("2.5m") == (None, 2.5)
    for bad in ("0", "-3", "ten", "5h"):
        with pytest.raises(SpdyError, match="--search-budget"):
            parse_budget(bad)


def test_prior_coefficients_scale_the_dp_choice(bert_profile):
    profile, _ = bert_profile
    speedup = _speedup(profile)
    names = profile.layer_names
    protected = np.ones(len(names))
    protected[0] = 1000.0  # the first layer made very sensitive stays dense or nearly so
    plan = solve(profile, speedup, SolveSettings(coefficients=tuple(protected)))
    base = solve(profile, speedup, SolveSettings(coefficients=tuple(np.ones(len(names)))))
    assert plan.levels[names[0]] <= base.levels[names[0]]


def test_verification_searches_once_for_the_target_whatever_solve_speedup_it_asks_first(setup, bert_profile):
    """The verify loop's first call probes the profile's reach at a solve speedup every plan meets; the
    search behind ``keeping()`` must still run for the target (at the probe, every candidate would keep every
    layer dense and score alike), once, and later calls re-solve with its coefficients."""
    from contextlib import nullcontext

    from spdy_recipes.solve.objective import SearchedSolver, search_key

    profile, _ = bert_profile
    target = _speedup(profile)
    settings = SearchSettings(seed=3, steps=4, random_inits=2)
    solver = SearchedSolver(setup, profile, target, SolveSettings(quantile=QUANTILE), settings,
                            lambda: nullcontext(lambda state: None), lambda message: None)
    keeping = solver.keeping()
    probe = keeping(profile, 1e-3)  # what verify's first solve asks for
    assert len(solver.history) == 1
    assert solver.last.key == search_key(ProfileObjective(setup, profile, target, QUANTILE), settings)
    assert solver.last.key != search_key(ProfileObjective(setup, profile, target, QUANTILE, 1e-3), settings)
    at_target = keeping(profile, None)
    assert len(solver.history) == 1 and solver.has(probe) and solver.has(at_target)
    assert at_target.pruned  # solved for the target with the searched coefficients
