"""Shared fixtures: real DeepSparse profiles of the toy models, measured once per session."""

from __future__ import annotations

import os

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import pytest  # noqa: E402

from spdy_recipes.grid import parse_grid  # noqa: E402
from spdy_recipes.models import load_model  # noqa: E402
from spdy_recipes.profile.backends import get_backend  # noqa: E402
from spdy_recipes.profile import save_profile  # noqa: E402
from spdy_recipes.profile.measure import TimingSettings, measure_profile  # noqa: E402

from .toy_models import write_tiny_bert  # noqa: E402

TEST_GRID = "0,0.5,0.7,0.8,0.9,0.95"
CNN_SPEC = "python:tests.toy_models:small_cnn"
CNN_SHAPE = (3, 128, 128)
BERT_SEQ = (64,)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    os.environ["SPDY_RECIPES_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def bert_spec(bert_dir):
    return f"hf:{bert_dir}"


def _profile(spec, shape, tmp_path_factory, name):
    bundle = load_model(spec, batch_size=8, input_shape=shape)
    backend = get_backend()
    profile = measure_profile(bundle, parse_grid(TEST_GRID), backend.max_cores(), "local", backend,
                              TimingSettings(iterations=10, warmup=3, repeats=3), log=lambda _: None)
    path = tmp_path_factory.mktemp("profiles") / f"{name}.json"
    save_profile(profile, path)
    return profile, path


@pytest.fixture(scope="session")
def cnn_profile(tmp_path_factory):
    """(Profile, path) of SmallCNN at batch 8, 128x128 inputs."""
    return _profile(CNN_SPEC, CNN_SHAPE, tmp_path_factory, "cnn")


@pytest.fixture(scope="session")
def bert_profile(bert_spec, tmp_path_factory):
    """(Profile, path) of the tiny BERT at batch 8, sequence 64."""
    return _profile(bert_spec, BERT_SEQ, tmp_path_factory, "bert")
