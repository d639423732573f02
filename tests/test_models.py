"""Model specs build the real classes, and layer names are the ones SparseML resolves."""

from __future__ import annotations

import pytest
import torch

from spdy_recipes.errors import SpdyError
from spdy_recipes.models import load_model, prunable_layers, select_names
from spdy_recipes.models.fingerprint import graph_hash


def _sparseml_names(module, names):
    from sparseml.pytorch.utils import get_named_layers_and_params_by_regex

    found = get_named_layers_and_params_by_regex(module, names, params_strict=True)
    return {f"{item.layer_name}.{item.param_name}" for item in found}


@pytest.mark.parametrize("spec, shape, first, count", [
    ("torchvision:resnet18", None, "conv1.weight", 21),
    ("torchvision:mobilenet_v2", None, "features.0.0.weight", 36),  # depthwise convolutions excluded
    ("yolov5:yolov5n.yaml", (3, 64, 64), "model.0.conv.weight", 60),
])
def test_specs_build_real_models_with_sparseml_names(spec, shape, first, count):
    bundle = load_model(spec, batch_size=2, input_shape=shape)
    names = [layer.name for layer in prunable_layers(bundle.module)]
    assert names[0] == first and len(names) == count
    assert _sparseml_names(bundle.module, names) == set(names)
    with torch.no_grad():
        bundle.module(*bundle.inputs.values())


def test_hf_spec_loads_config_dir(bert_spec):
    bundle = load_model(bert_spec, batch_size=2, input_shape=(16,))
    assert type(bundle.module).__name__ == "BertForSequenceClassification"
    names = [layer.name for layer in prunable_layers(bundle.module)]
    assert "bert.encoder.layer.0.attention.self.query.weight" in names and "classifier.weight" in names
    assert not any("embeddings" in name for name in names)
    assert set(bundle.inputs) == {"input_ids", "attention_mask"}
    assert _sparseml_names(bundle.module, names) == set(names)


def test_hf_spec_names_a_task_class(bert_spec):
    bundle = load_model(f"{bert_spec}:BertForQuestionAnswering", batch_size=2, input_shape=(16,))
    assert type(bundle.module).__name__ == "BertForQuestionAnswering"
    assert prunable_layers(bundle.module)[-1].name == "qa_outputs.weight"
    assert graph_hash(bundle) != graph_hash(load_model(bert_spec, batch_size=2, input_shape=(16,)))
    with pytest.raises(SpdyError, match="transformers has no model class 'NoSuchModel'"):
        load_model(f"{bert_spec}:NoSuchModel", batch_size=2, input_shape=(16,))


def test_weights_load_from_files_folders_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    reference = load_model("torchvision:resnet18", 1).module
    state = {name: tensor.clone() + 1 for name, tensor in reference.state_dict().items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    for source in (tmp_path / "model.safetensors", tmp_path):
        bundle = load_model("torchvision:resnet18", 1, weights=str(source))
        assert torch.equal(bundle.module.conv1.weight, state["conv1.weight"])
    with pytest.raises(SpdyError, match="no such file"):
        load_model("torchvision:resnet18", 1, weights=str(tmp_path / "missing"))


def test_weights_are_loaded_and_checked(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18()
    path = tmp_path / "w.pth"
    torch.save(reference.state_dict(), path)
    bundle = load_model("torchvision:resnet18", 1, weights=str(path))
    assert torch.equal(bundle.module.conv1.weight, reference.conv1.weight)
    with pytest.raises(SpdyError, match="do not fit the model"):
        load_model("torchvision:resnet34", 1, weights=str(path))


def test_graph_hash_tracks_architecture_and_shape_not_weights():
    a = load_model("torchvision:resnet18", 4)
    b = load_model("torchvision:resnet18", 8)
    with torch.no_grad():
        b.module.conv1.weight.add_(1.0)
    assert graph_hash(a) == graph_hash(b)
    assert graph_hash(a) != graph_hash(load_model("torchvision:resnet18", 4, (3, 160, 160)))
    assert graph_hash(a) != graph_hash(load_model("torchvision:resnet34", 4))


@pytest.mark.parametrize("spec, message", [
    ("python:tests.toy_models:nothing_here", "cannot import"),
    ("python:tests.toy_models:small_cnn", "need --input-shape"),
    ("yolov5:yolov5q.yaml", "unknown yolov5 config"),
    ("hf:/no/such/dir", "no config.json"),
    ("torchvision:", "unknown model spec"),
])
def test_bad_specs(spec, message):
    with pytest.raises(SpdyError, match=message):
        load_model(spec, 1)


def test_select_names():
    names = ["a.0.weight", "a.1.weight", "fc.weight"]
    assert select_names(names, exclude=["^fc"]) == ["a.0.weight", "a.1.weight"]
    assert select_names(names, include=[r"a\.1"]) == ["a.1.weight"]
    with pytest.raises(SpdyError, match="matches no prunable layer"):
        select_names(names, include=["zzz"])
    with pytest.raises(SpdyError, match="no prunable layer is left"):
        select_names(names, exclude=[".*"])
