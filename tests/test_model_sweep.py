"""The sweep of issue 13: one small model per kind is profiled in DeepSparse through the CLI and ends in a
recipe that SparseML loads and reads back, or in one ``error:`` line that names the unsupported part.

Fast settings (two levels, one repeat, batch 2): the check is that each kind goes through, with the
layers left dense recorded and the engine's supported share of the graph, not the timings."""

from __future__ import annotations

import pytest

from spdy_recipes.emit import RecipeSettings
from spdy_recipes.emit.write import render_checked_recipe
from spdy_recipes.profile import load_profile
from spdy_recipes.solve.planner import Plan
from spdy_recipes.solve.settings import SolveSettings

from .cli_helpers import assert_clean_failure, run_cli
from .kind_models import write_hf_config

KIND = "python:tests.kind_models"
FAST = ["--hw", "local", "--grid", "0,0.9", "--repeats", "1", "--iterations", "2", "--warmup", "1",
        "--calibration-plans", "3",  # (calibrated, on a few plans: the sweep is about every kind, not the fit)
        "--batch-size", "2"]

SWEEP = [  # (kind, spec or hf config name, input shape, a layer left dense and the words of its reason)
    ("inputs by keyword, tied lm_head", "hf:gpt2", "16", ("lm_head.weight", "tied to transformer.wte.weight")),
    ("encoder-decoder with decoder inputs", "hf:t5", "16", None),
    ("nn.MultiheadAttention", f"{KIND}:attention_encoder", "16,64",
     ("encoder.layers.0.self_attn.in_proj_weight", "fused attention projection")),
    ("hf vision (pixel_values)", "hf:vit", None, None),
    ("training-only head", f"{KIND}:aux_head", "3,32,32", ("aux.weight", "never called in the eval forward pass")),
    ("frozen, reparametrised", f"{KIND}:reparametrised", "3,32,32", ("last.weight", "frozen")),
    ("grouped convolution", f"{KIND}:grouped", "3,32,32", ("middle.weight", "grouped convolution (groups=4)")),
    ("shared module", f"{KIND}:shared_blocks", "3,32,32", None),
    ("ConvTranspose2d", f"{KIND}:upsampler", "3,32,32", None),
]


def _plan_at_top_level(profile) -> Plan:
    """Every profile layer at the grid's top level: a recipe whatever this machine's speedup."""
    top = len(profile.grid) - 1
    names = profile.layer_names
    times = {layer.name: layer.times_ms[top] for layer in profile.layers}
    total = profile.fixed_ms + sum(times.values())
    return Plan(target_speedup=1.0, solve_speedup=1.0, quantile=0.5, dense_ms=profile.dense_ms, budget_ms=total,
                bound_ms=total, predicted_ms=total, max_speedup=profile.dense_ms / total,
                sparsities={name: profile.grid[top] for name in names}, levels={name: top for name in names},
                times_ms=times, total_error=0.0)


@pytest.mark.parametrize("kind, spec, shape, dense", SWEEP, ids=[row[0] for row in SWEEP])
def test_every_kind_profiles_and_ends_in_a_recipe_sparseml_reads(kind, spec, shape, dense, tmp_path):
    if spec.startswith("hf:"):
        spec = f"hf:{write_hf_config(tmp_path / spec[3:], spec[3:])}"
    profile_path = tmp_path / "profile.json"
    args = ["profile", "--model", spec, *(["--input-shape", shape] if shape else []), *FAST, "-o", profile_path]
    code, stdout, stderr = run_cli(args)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    profile = load_profile(profile_path)
    assert 0 < profile.engine["fraction_of_supported_ops"] <= 1
    if dense:
        name, reason = dense
        assert reason in profile.model["left_dense"][name]
        assert any(line.startswith("warning: left dense: ") and name in line and reason in line
                   for line in stderr.splitlines()), stderr
        assert name not in profile.layer_names
    plan = _plan_at_top_level(profile)
    text = render_checked_recipe(plan, profile, profile_path, RecipeSettings(method="gmp", epochs=2),
                                 SolveSettings(), set(profile.layer_names))  # loaded with SparseML, read back
    assert f"prune_level_00_sparsity: {profile.grid[-1]:.1f}" in text
    code, inspected, _ = run_cli(["inspect", profile_path])
    assert code == 0 and (dense is None or dense[0] in inspected)


def test_unsupported_kinds_end_in_one_error_line(tmp_path):
    assert_clean_failure(["profile", "--model", "torchvision:fasterrcnn_mobilenet_v3_large_fpn", *FAST,
                          "-o", tmp_path / "p.json"], "detection models take a list of images")
