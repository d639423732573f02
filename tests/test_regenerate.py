"""regenerate: deterministic recipes from stored profiles, and --check for changed profiles and models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from spdy_recipes.models import load_model
from spdy_recipes.profile.store import profile_filename
from spdy_recipes.solve.settings import solve

from .cli_helpers import run_cli
from .conftest import CNN_SHAPE, CNN_SPEC


def _repository(tmp_path, cnn_profile, input_shape="3,128,128"):
    """A recipes folder: one named hardware with the CNN profile, and a manifest of 2 speedups x 2 methods."""
    profile, profile_path = cnn_profile
    base = tmp_path / "recipes"
    folder = base / "hardware" / "box"
    folder.mkdir(parents=True)
    (folder / "hardware.yaml").write_text(yaml.safe_dump({"name": "box", "cores": profile.cores}))
    profile_file = folder / profile_filename(load_model(CNN_SPEC, 8, CNN_SHAPE), profile.cores)
    shutil.copy(profile_path, profile_file)
    best = solve(profile, 1.0001).max_speedup
    speedups = [round(1 + f * (best - 1), 2) for f in (0.3, 0.6)]
    manifest = {"format": "spdy-recipes/manifest", "hardware_root": "hardware",
                "entries": [{"model": CNN_SPEC, "name": "cnn", "batch_size": 8, "input_shape": input_shape,
                             "hardware": ["box"], "speedups": speedups, "methods": ["gmp", "acdc"]}]}
    manifest_path = base / "manifest.yaml"
    manifest_path.write_text(yaml.safe_dump(manifest))
    return manifest_path, profile_file


def _recipes(base):
    return {p.relative_to(base): p.read_bytes() for p in sorted((base / "cnn").rglob("*.yaml"))}


def test_regenerate_is_deterministic_and_check_passes_after_it(tmp_path, cnn_profile):
    manifest, _ = _repository(tmp_path, cnn_profile)
    code, stdout, stderr = run_cli(["regenerate", "--manifest", manifest, "--check"])
    assert code == 1 and stdout.count("missing: ") == 4
    assert not (manifest.parent / "cnn").exists()
    code, stdout, stderr = run_cli(["regenerate", "--manifest", manifest])
    assert code == 0, stdout + stderr
    first = _recipes(manifest.parent)
    assert len(first) == 4 and all(b"!GMPruningModifier" in t or b"!ACDCPruningModifier" in t for t in first.values())
    code, stdout, _ = run_cli(["regenerate", "--manifest", manifest, "--check"])
    assert code == 0 and "4 current" in stdout
    shutil.rmtree(manifest.parent / "cnn")
    assert run_cli(["regenerate", "--manifest", manifest])[0] == 0
    assert _recipes(manifest.parent) == first  # byte-identical from the same inputs


def test_check_reports_a_changed_profile_without_writing(tmp_path, cnn_profile):
    manifest, profile_file = _repository(tmp_path, cnn_profile)
    assert run_cli(["regenerate", "--manifest", manifest])[0] == 0
    before = _recipes(manifest.parent)
    data = json.loads(profile_file.read_text())
    for layer in data["layers"]:  # the machine got slower on dense kernels: every target stays reachable
        layer["samples_ms"][0] = [t * 1.2 for t in layer["samples_ms"][0]]
    profile_file.write_text(json.dumps(data))
    code, stdout, _ = run_cli(["regenerate", "--manifest", manifest, "--check"])
    assert code == 1 and "changed: " in stdout
    assert _recipes(manifest.parent) == before


def test_check_reports_a_changed_model_as_stale(tmp_path, cnn_profile):
    manifest, _ = _repository(tmp_path, cnn_profile)
    assert run_cli(["regenerate", "--manifest", manifest])[0] == 0
    text = manifest.read_text().replace("3,128,128", "3,96,96")  # the model now takes other inputs
    manifest.write_text(text)
    code, stdout, _ = run_cli(["regenerate", "--manifest", manifest, "--check"])
    assert code == 1 and stdout.count("error: ") == 4 and "stale" in stdout


def test_malformed_manifest_is_one_clean_line(tmp_path):
    bad = tmp_path / "manifest.yaml"
    bad.write_text("format: spdy-recipes/manifest\nentries:\n  - model: x:y\n    hardware: [a]\n    speedups: [0.5]\n"
                   "    methods: [gmp]\n")
    code, _, stderr = run_cli(["regenerate", "--manifest", bad])
    expected = f"error: malformed manifest {bad}: entries[0] speedups must be numbers above 1"
    assert code == 1 and stderr.strip() == expected


def test_committed_recipes_are_current():
    """The repository's own manifest: every recipe matches what its stored profiles give today."""
    manifest = Path(__file__).resolve().parent.parent / "recipes" / "manifest.yaml"
    code, stdout, _ = run_cli(["regenerate", "--manifest", manifest, "--check"])
    assert code == 0, stdout


def test_regenerate_over_two_ray_workers_writes_the_same_recipes(tmp_path, cnn_profile, monkeypatch):
    """--workers 2: one Ray task per recipe, the same bytes as one process, also when a worker dies once (its
    task runs again). (A worker that dies on every try: tests/test_cluster.py.)"""
    manifest, _ = _repository(tmp_path, cnn_profile)
    assert run_cli(["regenerate", "--manifest", manifest])[0] == 0
    first = _recipes(manifest.parent)
    shutil.rmtree(manifest.parent / "cnn")
    marker = tmp_path / "died-once"
    monkeypatch.setenv("SPDY_RECIPES_FAULT", f"die-once:regenerate:{marker}")
    code, stdout, stderr = run_cli(["regenerate", "--manifest", manifest, "--workers", 2])
    assert marker.is_file()
    assert code == 0, stdout + stderr
    assert "[cluster] a local Ray instance (2 workers)" in stderr
    assert _recipes(manifest.parent) == first
