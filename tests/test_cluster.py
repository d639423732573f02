"""Ray (--workers, --cluster) and --device: local Ray instances and a two-node local cluster, on recorded real
profiles and the tiny BERT, so that every test gives the same answer on every CPU. Nothing here needs a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spdy_recipes.device import resolve_device
from spdy_recipes.errors import SpdyError

from .cli_helpers import assert_clean_failure, run_cli
from .conftest import BERT_SEQ, halfway

REPO = Path(__file__).resolve().parents[1]
# 28 candidates: past the 25 random ones, into the local search, where candidates scored ahead are drawn again
SEARCH = ["--search-budget", "28", "--seed", "2", "--calib-samples", "8", "--no-verify"]


@pytest.fixture(scope="module")
def bert_tokens(module_dir) -> Path:
    """Seeded random token ids for the tiny BERT (its folder has no tokenizer)."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (24, *BERT_SEQ), generator=generator)
    path = module_dir / "tokens.pt"
    torch.save({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, path)
    return path


def _generate(bert_profile, bert_spec, tokens, out, cache, monkeypatch, *extra):
    """generate a searched recipe for the tiny BERT on its recorded profile, with its own (empty) cache, so
    that the database is built and the search runs in this call."""
    profile, path = bert_profile
    monkeypatch.setenv("SPDY_RECIPES_CACHE", str(cache))
    return run_cli(["generate", "--model", bert_spec, "--input-shape", str(BERT_SEQ[0]), "--batch-size", 8,
                    "--hw", path, "--speedup", halfway(profile, 0.6), "--calib", tokens, *SEARCH, "-o", out,
                    *extra])


def test_one_or_two_workers_give_the_same_recipe_bytes(bert_profile, bert_spec, bert_tokens, tmp_path,
                                                        monkeypatch):
    """The database's layers are Ray tasks and the candidates are scored by actors; the search takes them in
    the order one worker would, so the recipe is the same byte for byte. With two workers one scoring actor
    dies once on purpose (``cluster.runtime.fault_point``): the actors start afresh and the bytes stay the same."""
    recipes = {}
    marker = tmp_path / "died-once"
    for workers in (1, 2):
        if workers == 2:
            monkeypatch.setenv("SPDY_RECIPES_FAULT", f"die-once:search:{marker}")
        out = tmp_path / f"w{workers}.yaml"
        code, stdout, stderr = _generate(bert_profile, bert_spec, bert_tokens, out, tmp_path / f"cache{workers}",
                                         monkeypatch, "--workers", workers)
        assert code == 0, stderr
        assert f"[cluster] a local Ray instance ({workers} workers)" in stderr
        assert "[database] built" in stderr and "[search] 28 candidates" in stderr
        recipes[workers] = out.read_bytes()
    assert marker.is_file()  # an actor died, and the search went on
    assert recipes[1] == recipes[2]
    assert b"searched coefficients" in recipes[1]


def test_device_cpu_gives_todays_recipe_and_a_gpu_torch_does_not_see_is_one_error(bert_profile, bert_spec,
                                                                                   bert_tokens, tmp_path,
                                                                                   monkeypatch):
    outs = {}
    if torch.cuda.is_available():  # --device auto would be the GPU: its recipe may differ in the last digits
        print(f"compared --device cpu with itself: torch sees {torch.cuda.device_count()} GPU(s) here")
    default = ["--device", "cpu"] if torch.cuda.is_available() else []
    for name, extra in (("default", default), ("cpu", ["--device", "cpu"])):
        outs[name] = tmp_path / f"{name}.yaml"
        code, _, stderr = _generate(bert_profile, bert_spec, bert_tokens, outs[name], tmp_path / f"cache-{name}",
                                    monkeypatch, *extra)
        assert code == 0, stderr
    assert outs["default"].read_bytes() == outs["cpu"].read_bytes()
    with pytest.raises(SpdyError, match="bad --device"):
        resolve_device("tpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        print(f"skipped the no-GPU error: torch sees {torch.cuda.device_count()} GPU(s) here")
        return
    assert resolve_device("auto") == torch.device("cpu")
    profile, path = bert_profile
    out = tmp_path / "gpu.yaml"
    monkeypatch.setenv("SPDY_RECIPES_CACHE", str(tmp_path / "cache-gpu"))
    assert_clean_failure(["generate", "--model", bert_spec, "--input-shape", str(BERT_SEQ[0]), "--batch-size", 8,
                          "--hw", path, "--speedup", halfway(profile, 0.6), "--calib", bert_tokens, *SEARCH,
                          "--device", "cuda:0", "-o", out], "torch sees no GPU here", out)


def test_a_worker_that_dies_again_after_its_retry_fails_the_command_in_one_line(bert_profile, bert_spec,
                                                                                  bert_tokens, tmp_path, monkeypatch):
    """SPDY_RECIPES_FAULT makes Ray workers exit at a given point (cluster.runtime.fault_point); a death once is
    retried (the test above, and regenerate's)."""
    monkeypatch.setenv("SPDY_RECIPES_FAULT", "die:database")
    out = tmp_path / "dead.yaml"
    cache = tmp_path / "cache2"
    code, stdout, stderr = _generate(bert_profile, bert_spec, bert_tokens, out, cache, monkeypatch, "--workers", 2)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1, stderr
    assert "a Ray worker died while building the database layer" in errors[0] and "Traceback" not in stderr
    assert not out.exists() and not list(cache.glob("databases/*"))  # nothing half-written


def test_a_named_hardware_profile_runs_on_the_node_that_offers_it_and_is_reused(tmp_path, monkeypatch):
    """Two Ray nodes on this machine, one started with hw:test-node: generate --hw test-node --cluster profiles
    there (its node id recorded in the profile), and a second call reuses the stored profile."""
    import json

    from ray.cluster_utils import Cluster

    from .recorded import CNN_SPEC

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        node = cluster.add_node(num_cpus=1, resources={"hw:test-node": 1})
        cluster.wait_for_nodes()
        args = ["generate", "--model", CNN_SPEC, "--input-shape", "3,32,32", "--batch-size", 2, "--hw", "test-node",
                "--hw-root", tmp_path / "hardware", "--cluster", cluster.address, "--grid", "0,0.5,0.9",
                "--repeats", 1, "--iterations", 2, "--speedup", 1.01, "--no-verify"]
        code, _, stderr = run_cli([*args, "-o", tmp_path / "first.yaml"])
        assert code == 0 or "best reachable" in stderr, stderr  # (a toy model may not reach 1.01x on every CPU)
        assert "[profile] measuring" in stderr and "hw:test-node" in stderr
        [stored] = (tmp_path / "hardware" / "test-node").glob("*-c*.json")
        assert json.loads(stored.read_text())["hardware"]["ray_node_id"] == node.node_id
        code, _, stderr = run_cli([*args, "-o", tmp_path / "second.yaml"])
        assert "[profile] measuring" not in stderr
        # profile --cluster measures it there again (the command a CI job per hardware runs)
        code, stdout, stderr = run_cli(["profile", "--model", CNN_SPEC, "--input-shape", "3,32,32", "--batch-size", 2,
                                        "--hw", "test-node", "--hw-root", tmp_path / "hardware", "--cluster",
                                        cluster.address, "--grid", "0,0.9", "--repeats", 1, "--iterations", 2,
                                        "--calibration-plans", 0, "--force"])
        assert code == 0, stderr
        assert "[profile] measuring" in stderr and f"wrote {stored}" in stdout
        assert json.loads(stored.read_text())["grid"] == [0.0, 0.9]
    finally:
        cluster.shutdown()


def test_without_workers_or_a_cluster_nothing_imports_ray(bert_profile, bert_spec, bert_tokens, tmp_path):
    profile, path = bert_profile
    script = f"""
import sys
from click.testing import CliRunner
from spdy_recipes.cli import main
result = CliRunner().invoke(main, ["generate", "--model", {bert_spec!r}, "--input-shape", "{BERT_SEQ[0]}",
    "--batch-size", "8", "--hw", {str(path)!r}, "--speedup", "{halfway(profile, 0.6)}", "--calib",
    {str(bert_tokens)!r}, "--search-budget", "4", "--calib-samples", "16", "--no-verify", "-o",
    {str(tmp_path / "r.yaml")!r}])
assert result.exit_code == 0, result.stderr
print("ray imported:", "ray" in sys.modules)
"""
    env = {**os.environ, "SPDY_RECIPES_CACHE": str(tmp_path / "cache"), "NM_DISABLE_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ray imported: False" in result.stdout


def test_bad_cluster_settings_fail_in_one_line(cnn_profile, tmp_path):
    from .cli_helpers import CNN_ARGS

    profile, path = cnn_profile
    out = tmp_path / "r.yaml"
    base = ["generate", *CNN_ARGS, "--hw", path, "--speedup", halfway(profile), "--no-verify", "-o", out]
    assert_clean_failure([*base, "--workers", 0], "--workers must be at least 1", out)
    assert_clean_failure([*base, "--cluster", "127.0.0.1:1"], "cannot join the Ray cluster at 127.0.0.1:1", out)


def test_malformed_cluster_addresses_and_devices_fail_before_any_work(cnn_profile, tmp_path):
    from .cli_helpers import CNN_ARGS

    profile, path = cnn_profile
    out = tmp_path / "r.yaml"
    base = ["generate", *CNN_ARGS, "--hw", path, "--speedup", halfway(profile), "--no-verify", "-o", out]
    assert_clean_failure([*base, "--cluster", "127.0.0.1:-5"], "bad --cluster '127.0.0.1:-5'", out)
    assert_clean_failure([*base, "--cluster", "ray://head:10001"], "need ray[client]", out)
    assert_clean_failure([*base, "--device", "tpu"], "bad --device", out)  # without --calib too
    code, _, stderr = run_cli([*base, "--device", "cpu"])
    assert code == 0 and "--device cpu applies to SPDY's search" in stderr  # said, not silently ignored
    assert_clean_failure(["verify", tmp_path / "any.yaml", "--model", "torchvision:resnet18", "--trained", ""],
                         "--trained needs a weights file")
