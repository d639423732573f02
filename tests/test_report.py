"""``report`` and ``generate --report``: the HTML page and its plots, checked against the recipe, and rendered in a
real headless Chromium; ``tradeoff``: the speed/accuracy curve. Recipes come from the recorded SmallCNN profile
(the same numbers on every machine), except where the engine measures in-context times here."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat

import pytest

from spdy_recipes.emit import read_recipe
from spdy_recipes.report.view import NO_GAIN, build_view, dense_reason

from .browser import open_page, start_chromium
from .cli_helpers import CNN_ARGS, assert_clean_failure, run_cli, skip_when_too_busy
from .conftest import recorded_profile, require_speedup

PLOTS = ("speedup.png", "layers.png", "sweeps.png")


@pytest.fixture(scope="module")
def recipe(module_dir, cnn_profile):
    """A gmp recipe for 1.2x on the recorded SmallCNN profile, ``head`` excluded, not verified."""
    _, profile_path = cnn_profile
    out = module_dir / "cnn-1.2x.yaml"
    code, _, stderr = run_cli(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", 1.2, "--exclude", "^head",
                               "-o", out, "--force"])
    assert code == 0, stderr
    return out


@pytest.fixture(scope="module")
def report_dir(module_dir, recipe, cnn_profile):
    out = module_dir / "report"
    code, stdout, stderr = run_cli(["report", recipe, "--profile", cnn_profile[1], "-o", out])
    assert code == 0, stderr
    assert f"wrote {out / 'index.html'}" in stdout
    return out


@pytest.fixture(scope="module")
def browser(module_dir):
    driver = start_chromium(module_dir / "chromium-profile")
    yield driver
    driver.quit()


def test_the_report_plots_exactly_the_recipes_sparsities_and_the_profiles_times(report_dir, recipe, cnn_profile):
    profile, _ = cnn_profile
    targets = {name: float(s) for name, s in read_recipe(recipe).targets.items()}
    plotted = json.loads((report_dir / "report.json").read_text())
    layers = plotted["layers"]
    assert layers["layers"] == profile.layer_names  # model order, every prunable layer
    assert layers["sparsity"] == [targets.get(name, 0.0) for name in profile.layer_names]
    assert targets and all(s > 0 for s in targets.values())
    for index, layer in enumerate(profile.layers):
        assert layers["dense_ms"][index] == layer.times_ms[0]
        assert layers["pruned_ms"][index] == layer.times_ms[profile.grid.index(layers["sparsity"][index])]
    metadata = read_recipe(recipe).metadata
    predicted = profile.dense_ms / (profile.fixed_ms + sum(layers["pruned_ms"]))
    assert predicted == pytest.approx(metadata["predicted_speedup"], abs=1e-3)
    assert plotted["speedup"]["target"] == 1.2 and plotted["speedup"]["speedups"][-1] == pytest.approx(predicted)
    assert plotted["search"] is None and not (report_dir / "search.png").exists()  # no search recorded
    for name in PLOTS:
        assert (report_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_layers_left_dense_say_why(report_dir, recipe, cnn_profile):
    view = build_view(recipe, cnn_profile[1])
    reasons = {row.name: row.reason for row in view.layers}
    assert reasons["head.weight"].startswith("excluded")  # --exclude ^head
    assert reasons["body.4.weight"].startswith("no gain at any level")  # every sparse level slower than dense there
    assert all(reasons[name] == "" for name in read_recipe(recipe).targets)
    page = (report_dir / "index.html").read_text()
    assert "excluded (--include/--exclude)" in page and "no gain at any level" in page
    assert dense_reason("x", [1.0, 0.5], {"x"}).startswith("the solver's choice")
    assert dense_reason("x", [1.0, 1.0 - NO_GAIN / 2], {"x"}).startswith("no gain")


def test_the_report_folder_keeps_the_umasks_permissions(module_dir, recipe, cnn_profile):
    old = os.umask(0o027)
    try:
        code, _, stderr = run_cli(["report", recipe, "--profile", cnn_profile[1], "-o", module_dir / "umask"])
    finally:
        os.umask(old)
    assert code == 0, stderr
    assert stat.S_IMODE((module_dir / "umask").stat().st_mode) == 0o750
    assert {stat.S_IMODE(p.stat().st_mode) for p in (module_dir / "umask").iterdir()} == {0o640}


def test_the_report_finds_a_named_hardwares_profile_from_the_recipe_alone(tmp_path):
    recipe = "recipes/mobilenet_v2/epyc-avx2-2core/acdc-1.5x.yaml"
    code, _, stderr = run_cli(["report", recipe, "-o", tmp_path / "r"])
    assert code == 0, stderr
    view = build_view(recipe)
    assert view.profile_path.name == "torchvision-mobilenet_v2-bs16-c2.json" and not view.notes
    assert view.predicted_speedup == pytest.approx(read_recipe(recipe).metadata["predicted_speedup"], abs=1e-3)


def test_layers_one_engine_operation_fuses_are_shown_as_one_block_at_one_level(tmp_path):
    profile, profile_path = recorded_profile("sparseml-resnet18-5")  # 21 layers in 18 fusion blocks
    out = tmp_path / "resnet18.yaml"
    code, _, stderr = run_cli(["generate", "--model", "sparseml:resnet18", "--input-shape", "3,64,64", "--num-classes",
                               5, "--hw", profile_path, "--speedup", 1.3, "-o", out])
    assert code == 0, stderr
    view = build_view(out, profile_path)
    fused = {}
    for row in view.layers:
        if row.block:
            fused.setdefault(row.block, []).append(row)
    assert len(fused) == sum(len(block) > 1 for block in profile.blocks())
    for label, rows in fused.items():
        assert label.endswith(f"({len(rows)} layers)") and len({row.sparsity for row in rows}) == 1


def test_bad_report_requests_fail_in_one_line(tmp_path, recipe, cnn_profile, bert_profile):
    out = tmp_path / "r"
    assert_clean_failure(["report", recipe, "-o", out], "no profile with the recipe's hash", out)
    assert_clean_failure(["report", recipe, "--profile", bert_profile[1], "-o", out], "another model graph", out)
    assert_clean_failure(["report", tmp_path / "none.yaml", "-o", out], "does not exist", out)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert_clean_failure(["report", recipe, "--profile", cnn_profile[1], "-o", tmp_path / "mine"],
                         "holds files a report does not write (notes.txt)")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert run_cli(["report", recipe, "--profile", cnn_profile[1], "-o", out])[0] == 0
    assert_clean_failure(["report", recipe, "--profile", cnn_profile[1], "-o", out], "--force")
    assert run_cli(["report", recipe, "--profile", cnn_profile[1], "-o", out, "--force"])[0] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    # a report folder with anything else in it is never replaced, even with --force; nor is a link
    (out / "notes.txt").write_text("mine")
    assert_clean_failure(["report", recipe, "--profile", cnn_profile[1], "-o", out, "--force"], "notes.txt")
    assert (out / "notes.txt").read_text() == "mine"
    (tmp_path / "link").symlink_to(out)
    assert_clean_failure(["report", recipe, "--profile", cnn_profile[1], "-o", tmp_path / "link", "--force"],
                         "is a link")
    assert_clean_failure(["report", recipe, "--profile", cnn_profile[1], "-o", ""], "folder name")
    assert_clean_failure(["report", tmp_path, "-o", tmp_path / "x"], "is a folder")
    assert_clean_failure(["report", recipe, "--profile", tmp_path, "-o", tmp_path / "x"], "is a folder")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(recipe.read_bytes().replace(b"# SPDY recipe", b"# SPDY r\xe9cipe"))
    assert_clean_failure(["report", latin, "-o", tmp_path / "x"], "not UTF-8 text")
    acdc = tmp_path / "acdc.yaml"  # SparseML itself accepts an AC/DC compression_sparsity of 1.5
    assert run_cli(["generate", *CNN_ARGS, "--hw", cnn_profile[1], "--speedup", 1.2, "--method", "acdc", "-o",
                    acdc])[0] == 0
    acdc.write_text(re.sub(r"^(prune_level_00_sparsity:) [0-9.]+", r"\1 1.5", acdc.read_text(), flags=re.M))
    assert_clean_failure(["report", acdc, "--profile", cnn_profile[1], "-o", tmp_path / "x"], "outside [0, 1)")


def test_a_constant_recipe_is_shown_at_the_levels_it_was_planned_at(tmp_path, cnn_profile):
    _, profile_path = cnn_profile
    gmp, constant = tmp_path / "gmp.yaml", tmp_path / "constant.yaml"
    for method, out in (("gmp", gmp), ("constant", constant)):
        code, _, stderr = run_cli(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", 1.2, "--method",
                                   method, "-o", out])
        assert code == 0, stderr
    assert all(value is None for value in read_recipe(constant).targets.values())
    shown, planned = build_view(constant, profile_path), build_view(gmp, profile_path)
    assert [row.sparsity for row in shown.layers] == [row.sparsity for row in planned.layers]
    assert any(row.pruned for row in shown.layers) and "constant-pruning recipe" in shown.notes[0]
    assert shown.predicted_speedup == pytest.approx(read_recipe(constant).metadata["predicted_speedup"], abs=1e-3)
    assert shown.guaranteed_speedup == pytest.approx(read_recipe(constant).metadata["guaranteed_speedup"], abs=1e-3)


def test_the_page_renders_in_chromium_with_every_image_and_the_recipes_values(browser, report_dir, recipe,
                                                                             cnn_profile):
    state, problems = open_page(browser, report_dir / "index.html")
    assert problems == []
    assert sorted(image["src"] for image in state["images"]) == sorted(PLOTS)
    recipe_file = read_recipe(recipe)
    targets = {name: float(s) for name, s in recipe_file.targets.items()}
    shown = {row["layer"]: row for row in state["rows"]}
    assert list(shown) == cnn_profile[0].layer_names
    for name, row in shown.items():
        assert row["sparsity"] == pytest.approx(targets.get(name, 0.0), abs=1e-6)
        assert row["shown"] == (f"{targets[name]:.4f}" if name in targets else "dense")
    assert f"predicted {recipe_file.metadata['predicted_speedup']:.3f}x" in state["summary"]
    for width in (1000, 700):  # narrower than the page: the plots shrink, wide tables scroll inside their box
        browser.set_window_size(width, 1500)
        assert open_page(browser, report_dir / "index.html")[0]["overflow"] == 0
    browser.set_window_size(1280, 2000)


def test_the_browser_check_catches_a_missing_image_and_a_script_error(browser, report_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(report_dir, broken)
    (broken / "layers.png").unlink()
    page = broken / "index.html"
    page.write_text(page.read_text().replace("</body>", "<script>undefinedFunction();</script></body>"))
    _, problems = open_page(browser, page)
    assert any("layers.png did not load" in p for p in problems)
    assert any("undefinedFunction" in p for p in problems)


def test_generate_report_shows_the_search_curve(module_dir, cnn_profile):
    _, profile_path = cnn_profile
    out, folder = module_dir / "searched.yaml", module_dir / "searched-report"
    code, stdout, stderr = run_cli(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", 1.2, "--calib",
                                    "builtin:images", "--calib-samples", 8, "--database", "magnitude",
                                    "--search-budget", 6, "-o", out, "--report", folder])
    assert code == 0, stderr
    assert f"the report {folder / 'index.html'}" in stdout
    search = read_recipe(out).metadata["search"]
    plotted = json.loads((folder / "report.json").read_text())["search"]
    assert plotted["steps"][-1] == search["candidates"] and plotted["steps"][0] == search["curve"][0][0]
    assert plotted["best_loss"][:-1] == [loss for _, loss in search["curve"]]
    assert plotted["best_loss"] == sorted(plotted["best_loss"], reverse=True)  # best so far never rises
    assert (folder / "search.png").is_file()


def test_generate_report_records_in_context_layer_times_measured_here(tmp_path, measured_cnn_profile):
    profile, profile_path = measured_cnn_profile
    require_speedup(profile)
    out, folder = tmp_path / "verified.yaml", tmp_path / "report"
    code, _, stderr = run_cli(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", 1.01, "--verify",
                               "--tolerance", 1, "--rounds", 3, "-o", out, "--report", folder])
    skip_when_too_busy(code, stderr, out)
    assert code == 0, stderr
    metadata = read_recipe(out).metadata
    in_context = metadata["measured_layer_ms"]
    assert set(in_context) == set(profile.layer_names) and all(ms >= 0 for ms in in_context.values())
    assert sum(in_context.values()) > 0
    plotted = json.loads((folder / "report.json").read_text())
    assert plotted["layers"]["in_context_ms"] == [in_context[name] for name in profile.layer_names]
    measured = plotted["speedup"]
    assert measured["names"][-1] == "measured" and measured["speedups"][-1] == metadata["measured_speedup"]


TRADEOFF = ["tradeoff", *CNN_ARGS, "--calib", "builtin:images", "--calib-samples", 8, "--holdout", 8,
            "--database", "magnitude", "--search-budget", 6]


def _csv(path):
    import csv

    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_tradeoff_gives_every_method_at_every_target_with_losses(tmp_path, cnn_profile):
    profile, profile_path = cnn_profile
    from spdy_recipes.solve.settings import best_reachable

    reachable = best_reachable(profile)
    out = tmp_path / "curve"
    code, stdout, stderr = run_cli([*TRADEOFF, "--hw", profile_path, "--speedups", "1.2,1.1,5", "-o", out])
    assert code == 0, stderr
    assert "[tradeoff] 1/3 1.1x" in stderr and "s left)" in stderr  # progress with the time left, in order
    rows = _csv(out / "tradeoff.csv")
    assert rows[0]["method"] == "dense" and float(rows[0]["heldout_loss"]) == pytest.approx(0.0, abs=1e-9)
    by_target = {}
    for row in rows[1:]:
        by_target.setdefault(float(row["target"]), {})[row["method"]] = row
    assert list(by_target) == [1.1, 1.2, 5.0]
    assert by_target[5.0]["spdy"]["note"] == f"beyond the profile's reach ({reachable:.3f}x)"
    for target in (1.1, 1.2):
        methods = by_target[target]
        assert list(methods) == ["spdy", "uniform", "global_magnitude", "lamp", "erk"]
        spdy = float(methods["spdy"]["predicted_speedup"])
        assert spdy >= target
        for row in methods.values():
            if row["note"]:
                assert "reachable" in row["note"]
                continue
            assert float(row["predicted_speedup"]) == pytest.approx(spdy, rel=0.006)  # at SPDY's latency
            assert float(row["calibration_loss"]) >= 0 and float(row["heldout_loss"]) >= 0
            assert 0 < float(row["sparsity"]) <= profile.grid[-1]
            assert row["measured_speedup"] == ""  # --rounds 0: predicted only
    assert (out / "tradeoff.png").read_bytes()[:4] == b"\x89PNG"
    assert "held-out loss: KL to dense" in stdout
    # a second run reuses the cached database and searches: the same table, no candidate scored again
    code, again, stderr = run_cli([*TRADEOFF, "--hw", profile_path, "--speedups", "1.2,1.1,5", "-o", out, "--force"])
    assert code == 0 and again == stdout, stderr
    assert "[database] reused" in stderr and "continuing from checkpoint" in stderr


def test_tradeoff_without_calibration_measures_here_and_gives_no_losses(tmp_path, measured_cnn_profile):
    profile, profile_path = measured_cnn_profile
    target = round(1 + 0.5 * (require_speedup(profile) - 1), 3)
    code, stdout, stderr = run_cli(["tradeoff", *CNN_ARGS, "--hw", profile_path, "--speedups", target, "--methods",
                                    "uniform", "--rounds", 2, "-o", tmp_path])
    assert code == 0, stderr
    assert "no losses (give --calib" in stdout
    rows = _csv(tmp_path / "tradeoff.csv")
    assert [row["method"] for row in rows] == ["spdy", "uniform"]
    for row in rows:
        assert float(row["measured_speedup"]) > 0 and float(row["measured_low"]) <= float(row["measured_high"])
        assert row["calibration_loss"] == "" and row["heldout_loss"] == ""


def test_bad_tradeoff_requests_fail_in_one_line(tmp_path, cnn_profile):
    args = ["tradeoff", *CNN_ARGS, "--hw", cnn_profile[1]]
    assert_clean_failure([*args, "--speedups", "1.2,x"], "bad --speedups")
    assert_clean_failure([*args, "--speedups", "0.9"], "above 1")
    assert_clean_failure([*args, "--speedups", "9,10"], "no target is reachable")
    assert_clean_failure([*args, "--speedups", "1.2", "--methods", "random"], "unknown method")
    assert_clean_failure([*args, "--speedups", "1.2,,1.3"], "bad --speedups")
    assert_clean_failure([*args, "--speedups", "1.2", "--quantile", 2], "--quantile must be between 0 and 1")
    (tmp_path / "file").write_text("")
    assert_clean_failure([*args, "--speedups", "1.2", "-o", tmp_path / "file"], "is a file")


def test_verify_report_shows_the_measurement_it_just_took(tmp_path, measured_cnn_profile):
    profile, profile_path = measured_cnn_profile
    target = round(1 + 0.5 * (require_speedup(profile) - 1), 3)
    recipe, folder = tmp_path / "r.yaml", tmp_path / "report"
    code, _, stderr = run_cli(["generate", *CNN_ARGS, "--hw", profile_path, "--speedup", target, "--no-verify",
                               "-o", recipe])
    assert code == 0, stderr
    before = recipe.read_bytes()
    code, stdout, stderr = run_cli(["verify", recipe, "--model", CNN_ARGS[1], "--hw", profile_path, "--rounds", 3,
                                    "--tolerance", 1, "--report", folder])
    assert code == 0, stderr
    assert f"wrote {folder / 'index.html'}" in stdout and recipe.read_bytes() == before  # the recipe is untouched
    plotted = json.loads((folder / "report.json").read_text())
    speedup = plotted["speedup"]
    printed = float(stdout.split("measured ")[1].split("x")[0])
    assert speedup["names"][-1] == "measured" and abs(speedup["speedups"][-1] - printed) <= 0.0011
    in_context = plotted["layers"]["in_context_ms"]
    assert len(in_context) == len(profile.layers) and all(ms is not None and ms >= 0 for ms in in_context)
