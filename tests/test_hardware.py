"""Named hardware: resolution through its description, its errors, and warnings about other machines."""

from __future__ import annotations

import json
import shutil

import yaml

from spdy_recipes.models import load_model
from spdy_recipes.profile.store import profile_filename

from .cli_helpers import CNN_ARGS, assert_clean_failure, run_cli
from .conftest import CNN_SHAPE, CNN_SPEC

FAST_PROFILE = ["--grid", "0,0.9", "--repeats", "1", "--iterations", "2", "--warmup", "1", "--calibration-plans", "3"]


def _named(root, name, profile, profile_path, cores=None):
    """A hardware folder holding ``profile`` with a description naming ``cores`` (default: the profile's)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "hardware.yaml").write_text(yaml.safe_dump({"name": name, "cores": cores or profile.cores}))
    bundle = load_model(CNN_SPEC, 8, CNN_SHAPE)
    target = folder / profile_filename(bundle, profile.cores)
    shutil.copy(profile_path, target)
    return target


def test_named_hardware_resolves_its_cores_from_the_description(cnn_profile, tmp_path):
    profile, profile_path = cnn_profile
    root = tmp_path / "hardware"
    _named(root, "c5a.8xlarge", profile, profile_path)
    out = tmp_path / "r.yaml"
    code, stdout, stderr = run_cli(["generate", *CNN_ARGS, "--hw", "c5a.8xlarge", "--hw-root", root,
                                    "--speedup", "1.2", "-o", out])
    assert code == 0, stderr
    assert "hardware: \"c5a.8xlarge\"" in out.read_text() or "hardware: \"local\"" in out.read_text()


def test_named_hardware_errors_list_what_exists_and_the_command(cnn_profile, tmp_path):
    profile, profile_path = cnn_profile
    root = tmp_path / "hardware"
    _named(root, "c5a.8xlarge", profile, profile_path)
    out = tmp_path / "r.yaml"
    line = assert_clean_failure(["generate", *CNN_ARGS, "--hw", "m7i.large", "--hw-root", root, "--speedup", "1.2",
                                 "-o", out], "unknown hardware 'm7i.large'", out)
    assert "c5a.8xlarge" in line and "spdy-recipe profile --model" in line and "--hw m7i.large" in line
    other_cores = profile.cores + 7
    line = assert_clean_failure(["generate", *CNN_ARGS, "--hw", "c5a.8xlarge", "--hw-root", root, "--cores",
                                 other_cores, "--speedup", "1.2", "-o", out], "has no profile", out)
    assert f"{other_cores} cores" in line and "(it has: " in line and f"--cores {other_cores}" in line
    line = assert_clean_failure(["generate", "--model", CNN_SPEC, "--input-shape", "3,128,128", "--batch-size", "4",
                                 "--hw", "c5a.8xlarge", "--hw-root", root, "--speedup", "1.2", "-o", out],
                                "has no profile", out)
    assert "--batch-size 4" in line


def test_a_stale_profile_is_an_error(cnn_profile, tmp_path):
    profile, profile_path = cnn_profile
    root = tmp_path / "hardware"
    path = _named(root, "box", profile, profile_path)
    data = json.loads(path.read_text())
    data["model"]["graph_hash"] = "sha256:0000"
    path.write_text(json.dumps(data))
    assert_clean_failure(["generate", *CNN_ARGS, "--hw", "box", "--hw-root", root, "--speedup", "1.2", "-o",
                          tmp_path / "r.yaml"], "(stale, or another model)")


def test_profile_creates_named_hardware_and_warns_about_another_machine(tmp_path):
    root = tmp_path / "hardware"
    code, stdout, stderr = run_cli(["profile", *CNN_ARGS, "--hw", "lab-box", "--hw-root", root,
                                    "--instance-type", "bare-metal", *FAST_PROFILE])
    assert code == 0, stderr
    description = yaml.safe_load((root / "lab-box" / "hardware.yaml").read_text())
    assert description["instance_type"] == "bare-metal" and description["cpu_model"] and description["cores"] >= 1
    assert "deepsparse 1.8" in description["engine"]
    assert len(list((root / "lab-box").glob("*-bs8-c*.json"))) == 1
    assert_clean_failure(["profile", *CNN_ARGS, "--hw", "lab-box", "--hw-root", root, *FAST_PROFILE],
                         "already exists (use --force")
    description["cpu_model"] = "AMD EPYC 7R32"
    (root / "lab-box" / "hardware.yaml").write_text(yaml.safe_dump(description))
    code, _, stderr = run_cli(["profile", *CNN_ARGS, "--hw", "lab-box", "--hw-root", root, "--force", *FAST_PROFILE])
    assert code == 0 and "warning: hardware 'lab-box' is described as another machine" in stderr
    assert "AMD EPYC 7R32" in stderr
