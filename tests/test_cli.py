"""The command line: a working generate, and bad input that fails cleanly without writing anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .cli_helpers import CNN_ARGS
from .cli_helpers import assert_clean_failure as _assert_clean_failure
from .cli_helpers import run_cli as _run
from .conftest import CNN_SPEC, halfway


def test_generate_writes_a_recipe_and_inspect_reads_it(cnn_profile, tmp_path):
    profile, profile_path = cnn_profile
    out = tmp_path / "recipe.yaml"
    code, stdout, stderr = _run(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", halfway(profile),
                                 "--method", "acdc", "-o", str(out)])
    assert code == 0, stderr
    # a profile file is not this machine: no verification, and the claim states the model's error, no guarantee
    assert "predicted" in stdout and "not measured here" in stdout and "SPDY's plans" in stdout
    assert "the profile is uncalibrated" in stdout  # a recorded format-2 profile: the claim says what backs it
    assert out.is_file()
    assert "# latency model: uncalibrated" in out.read_text()
    assert "at least" not in stdout and "[verify]" not in stderr
    text = out.read_text()
    assert "!ACDCPruningModifier" in text and "global_sparsity: False" in text
    code, stdout, _ = _run(["inspect", str(out)])
    assert code == 0 and "final sparsity" in stdout and "predicted_speedup" in stdout


def test_measuring_options_with_a_stored_profile_are_named_as_ignored(cnn_profile, tmp_path):
    profile, profile_path = cnn_profile
    out = tmp_path / "recipe.yaml"
    code, _, stderr = _run(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", halfway(profile),
                            "--grid", "0,0.9", "--repeats", "5", "-o", str(out)])
    assert code == 0, stderr
    assert "--grid, --repeats only apply to profiles measured here" in stderr
    code, _, stderr = _run(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", halfway(profile),
                            "-o", str(out), "--force"])
    assert code == 0 and "only apply to profiles measured here" not in stderr


def test_a_folder_given_as_a_file_is_named_as_a_folder(tmp_path):
    _assert_clean_failure(["inspect", str(tmp_path)], "is a folder")
    _assert_clean_failure(["solve", "--profile", str(tmp_path), "--speedup", "1.5"], "is a folder")


def test_the_unverified_claim_cites_the_error_measured_for_the_profiles_kind(cnn_profile, tmp_path):
    """A profile that records fusion groups is planned by fusion block; its claim cites that model's error."""
    profile, profile_path = cnn_profile
    data = json.loads(Path(profile_path).read_text())
    data["fused_groups"] = [[] for _ in data["grid"]]
    with_groups = tmp_path / "with-groups.json"
    with_groups.write_text(json.dumps(data))
    claims = {}
    for name, path in (("without", profile_path), ("with", with_groups)):
        code, stdout, stderr = _run(["generate", *CNN_ARGS, "--hw", str(path), "--speedup", halfway(profile),
                                     "-o", str(tmp_path / f"{name}.yaml")])
        assert code == 0, stderr
        claims[name] = stdout
    assert "49-88%" in claims["without"] and "measure it again" in claims["without"]
    assert "3% below to 15% above" in claims["with"] and "49-88%" not in claims["with"]


def test_solve_prints_per_layer_table(cnn_profile):
    profile, profile_path = cnn_profile
    code, stdout, _ = _run(["solve", "--profile", str(profile_path), "--speedup", halfway(profile)])
    assert code == 0
    assert "stem.weight" in stdout and "speedup" in stdout


def test_unknown_model(tmp_path):
    out = tmp_path / "r.yaml"
    _assert_clean_failure(["generate", "--model", "torchvision:resnet1800", "--hw", "local", "--speedup", "2",
                           "-o", str(out)], "unknown torchvision model 'resnet1800'", out)
    _assert_clean_failure(["generate", "--model", "keras:foo", "--hw", "local", "--speedup", "2", "-o", str(out)],
                          "unknown model spec", out)


def test_unknown_hw_lists_known_and_the_command(tmp_path):
    root = tmp_path / "hardware"
    (root / "c5a.8xlarge").mkdir(parents=True)
    out = tmp_path / "r.yaml"
    _assert_clean_failure(["generate", *CNN_ARGS, "--hw", "m7i.large", "--hw-root", str(root), "--speedup", "2",
                           "-o", str(out)], "unknown hardware 'm7i.large' (known in", out)
    code, _, stderr = _run(["generate", *CNN_ARGS, "--hw", "m7i.large", "--hw-root", str(root), "--speedup", "2",
                            "-o", str(out)])
    assert "c5a.8xlarge" in stderr and "spdy-recipe profile --model" in stderr


def test_mismatched_profile(cnn_profile, tmp_path):
    _, profile_path = cnn_profile
    out = tmp_path / "r.yaml"
    _assert_clean_failure(["generate", "--model", "torchvision:resnet18", "--hw", str(profile_path),
                           "--batch-size", "8", "--speedup", "1.5", "-o", str(out)], "does not match the model", out)
    _assert_clean_failure(["generate", "--model", CNN_SPEC, "--input-shape", "3,64,64", "--batch-size", "8",
                           "--hw", str(profile_path), "--speedup", "1.5", "-o", str(out)], "does not match", out)
    _assert_clean_failure(["generate", *CNN_ARGS[:-1], "4", "--hw", str(profile_path), "--speedup", "1.5",
                           "-o", str(out)], "measured at batch 8, not 4", out)


def test_infeasible_speedup_names_best_reachable(cnn_profile, tmp_path):
    _, profile_path = cnn_profile
    out = tmp_path / "r.yaml"
    _assert_clean_failure(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", "50", "-o", str(out)],
                          "the best reachable is", out)


def test_bad_method_and_bad_extension(cnn_profile, tmp_path):
    _, profile_path = cnn_profile
    code, _, stderr = _run(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", "1.5",
                            "--method", "magic", "-o", str(tmp_path / "r.yaml")])
    assert code != 0 and "magic" in stderr and not (tmp_path / "r.yaml").exists()
    _assert_clean_failure(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", "1.5",
                           "-o", str(tmp_path / "r.yml")], "must end in .yaml", tmp_path / "r.yml")
    # a .md recipe needs YAML front matter for SparseML to load it: refused rather than written unloadable
    _assert_clean_failure(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", "1.5",
                           "-o", str(tmp_path / "r.md")], "must end in .yaml", tmp_path / "r.md")


def test_existing_output_is_kept(cnn_profile, tmp_path):
    _, profile_path = cnn_profile
    out = tmp_path / "r.yaml"
    out.write_text("mine")
    _assert_clean_failure(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", "1.5", "-o", str(out)],
                          "already exists")
    assert out.read_text() == "mine"


def test_malformed_profile_and_unknown_layer_regex(cnn_profile, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "spdy-recipes/profile", "format_version": 1}))
    _assert_clean_failure(["solve", "--profile", str(bad), "--speedup", "2"], "malformed profile")
    _, profile_path = cnn_profile
    _assert_clean_failure(["solve", "--profile", str(profile_path), "--speedup", "1.5", "--exclude", "nosuch"],
                          "--exclude 'nosuch' matches no prunable layer")


def test_console_script_exits_nonzero_with_one_line(tmp_path):
    """The installed entry point, as a user runs it."""
    script = Path(sys.executable).parent / "spdy-recipe"
    result = subprocess.run([str(script), "solve", "--profile", str(tmp_path / "none.json"), "--speedup", "2"],
                            capture_output=True, text=True, env={**os.environ, "NM_DISABLE_ANALYTICS": "1"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: profile")
    assert "does not exist" in result.stderr


@pytest.mark.parametrize("bad", ["0,0.5,0.5", "0.1,0.5", "spdy:x", "0,1.0"])
def test_bad_grid(bad, tmp_path):
    _assert_clean_failure(["profile", *CNN_ARGS, "--hw", "local", "--grid", bad], "grid")


def test_a_report_that_cannot_be_written_leaves_no_recipe_behind(cnn_profile, tmp_path):
    _, profile_path = cnn_profile
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    out = tmp_path / "r.yaml"
    _assert_clean_failure(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", "1.05", "-o", str(out),
                           "--report", str(blocker / "report")], "is a file, not a folder", out)
    _assert_clean_failure(["generate", *CNN_ARGS, "--hw", str(profile_path), "--speedup", "1.05",
                           "-o", str(blocker / "r.yaml")], "is a file, not a folder")
    assert blocker.read_text() == "not a folder\n"


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--cores", "0", "--cores must be at least 1"), ("--speedup", "nan", "--speedup must be greater than 1"),
    ("--quantile", "1.5", "--quantile must be between 0 and 1"), ("--init-lr", "nan", "--init-lr must be"),
    ("--epochs", "inf", "--epochs must be a positive number"), ("--hw", "", "--hw must be"),
])
def test_out_of_range_values_fail_before_any_work(cnn_profile, tmp_path, option, value, message):
    _, profile_path = cnn_profile
    args = {"--hw": str(profile_path), "--speedup": "1.05", option: value}
    flat = [part for key, given in args.items() for part in (key, given)]
    _assert_clean_failure(["generate", *CNN_ARGS, *flat, "-o", str(tmp_path / "r.yaml")], message,
                          tmp_path / "r.yaml")
