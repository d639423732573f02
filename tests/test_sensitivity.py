"""Sensitivity tables: validated on load, and they steer the solver."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spdy_recipes.errors import SpdyError
from spdy_recipes.sensitivity import load_sensitivity, prior_errors
from spdy_recipes.solve.settings import SolveSettings, solve


def _write(path, grid, errors):
    path.write_text(json.dumps({"format": "spdy-recipes/sensitivity", "format_version": 1, "grid": grid,
                                "errors": errors}))
    return path


def test_prior_is_quadratic_in_level_index():
    table = prior_errors(2, 5, coefficients=np.array([1.0, 2.0]))
    assert table[0].tolist() == [0.0, 1 / 16, 4 / 16, 9 / 16, 1.0]
    assert table[1].tolist() == [2 * v for v in table[0].tolist()]


def test_table_loads_in_layer_order_and_rejects_defects(tmp_path):
    grid = [0.0, 0.5, 0.9]
    path = _write(tmp_path / "s.json", grid, {"b": [0, 1, 2], "a": [0, 3, 4]})
    assert load_sensitivity(path, ["a", "b"], grid).tolist() == [[0, 3, 4], [0, 1, 2]]
    with pytest.raises(SpdyError, match="another sparsity grid"):
        load_sensitivity(path, ["a"], [0.0, 0.5])
    with pytest.raises(SpdyError, match="lacks layer"):
        load_sensitivity(path, ["a", "c"], grid)
    bad = _write(tmp_path / "bad.json", grid, {"a": [0, -1, 2]})
    with pytest.raises(SpdyError, match="finite errors >= 0"):
        load_sensitivity(bad, ["a"], grid)


def test_a_sensitive_layer_is_pruned_less(bert_profile, tmp_path):
    """(On the tiny BERT's profile: the small CNN's AVX2 profile reaches its speedups only with most layers at the
    top level, so there is nothing to trade.)"""
    profile, _ = bert_profile
    names = profile.layer_names
    base = prior_errors(len(names), len(profile.grid))
    target = 1 + 0.5 * (solve(profile, 1.0001).max_speedup - 1)
    plain = solve(profile, target)
    victim = max(plain.pruned, key=plain.pruned.get)
    errors = {name: row.tolist() for name, row in zip(names, base, strict=True)}
    errors[victim] = [v * 1000 for v in errors[victim]]
    path = _write(tmp_path / "s.json", profile.grid, errors)
    steered = solve(profile, target, SolveSettings(sensitivity=str(path)))
    assert steered.sparsities[victim] < plain.sparsities[victim]
    assert steered.predicted_speedup >= target
