"""Every kind of model users bring (issue 13): each builds, exports, maps its layers and says which layers
stay dense and why, or fails with one clear line. The engine-free checks run here; ``test_model_sweep``
profiles one model per kind in DeepSparse and writes a recipe SparseML loads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from spdy_recipes.errors import SpdyError
from spdy_recipes.models import load_model, prunable_layers
from spdy_recipes.models.export import export_onnx
from spdy_recipes.models.layers import layer_flops, layer_survey
from spdy_recipes.models.weights import load_weights
from spdy_recipes.profile.layer_map import LayerMap

from .kind_models import write_hf_config

KIND = "python:tests.kind_models"


def _mapped(spec, shape, tmp_path, batch=2):
    bundle = load_model(spec, batch_size=batch, input_shape=shape)
    return bundle, LayerMap.build(bundle, export_onnx(bundle, tmp_path / "model.onnx"))


# --- 1. inputs by keyword, tied weights -------------------------------------------------------------------


def test_gpt2_exports_with_keyword_inputs_and_leaves_the_tied_lm_head_dense(tmp_path):
    folder = write_hf_config(tmp_path / "gpt2", "gpt2")
    bundle, layer_map = _mapped(f"hf:{folder}", (16,), tmp_path)
    assert list(bundle.inputs) == ["input_ids", "attention_mask"]
    assert bundle.module.config.use_cache is False
    names = [layer.name for layer in layer_map.layers]
    assert names[0] == "transformer.h.0.attn.c_attn.weight" and len(names) == 8  # 4 Conv1D per block
    assert "lm_head.weight" not in names
    assert "tied to transformer.wte.weight" in layer_map.left_dense["lm_head.weight"]


# --- 2. attention through scaled_dot_product_attention -----------------------------------------------------


def test_multihead_attention_exports_and_maps_out_proj(tmp_path):
    bundle, layer_map = _mapped(f"{KIND}:attention_encoder", (16, 64), tmp_path)
    names = [layer.name for layer in layer_map.layers]
    assert "encoder.layers.0.self_attn.out_proj.weight" in names  # applied functionally, still mapped
    assert set(layer_map.output_module.values()) == {layer.module for layer in layer_map.layers}
    assert layer_map.flops["encoder.layers.0.self_attn.out_proj.weight"] == 2 * 2 * 16 * 64 * 64
    assert "fused attention projection" in layer_map.left_dense["encoder.layers.1.self_attn.in_proj_weight"]


@pytest.mark.parametrize("name", ["llama", "bart", "t5", "albert", "mobilebert"])
def test_transformer_families_export(name, tmp_path):
    folder = write_hf_config(tmp_path / name, name)
    bundle, layer_map = _mapped(f"hf:{folder}", (16,), tmp_path)
    assert layer_map.layers
    if name == "t5":  # the seq2seq class gets decoder inputs: the ids shifted right behind the start token
        ids, decoder = bundle.inputs["input_ids"], bundle.inputs["decoder_input_ids"]
        assert torch.equal(decoder[:, 1:], ids[:, :-1]) and bool((decoder[:, 0] == 0).all())
    if name == "bart":  # the classification head reads the one end-of-sequence token per row
        assert bool((bundle.inputs["input_ids"] == 2).sum(1).eq(1).all())


def test_torchvision_vision_transformer_exports_and_maps_every_layer(tmp_path):
    _, layer_map = _mapped(f"{KIND}:torchvision_vit", (3, 32, 32), tmp_path)
    names = [layer.name for layer in layer_map.layers]
    assert names == ["conv_proj.weight", "encoder.layers.encoder_layer_0.self_attention.out_proj.weight",
                     "encoder.layers.encoder_layer_0.mlp.0.weight", "encoder.layers.encoder_layer_0.mlp.3.weight",
                     "heads.head.weight"]


# --- 3. weights files ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weight_files(module_dir):
    """The reference state_dict, layer1.0.conv1's weight after torch.nn.utils.prune, and the folder of files."""
    from torch.nn.utils import prune

    tmp_path = module_dir

    torch.manual_seed(1)
    model = load_model("torchvision:resnet18", 1, (3, 32, 32)).module
    plain = {k: v.clone() for k, v in model.state_dict().items()}
    files = {
        "dataparallel": {f"module.{k}": v for k, v in plain.items()},
        "compiled": {f"_orig_mod.{k}": v for k, v in plain.items()},
        "wrapped": {"epoch": 3, "model_state": plain},
        "lightning": {"state_dict": {f"module.{k}": v for k, v in plain.items()}},
        # sparseml.image_classification.train's checkpoint.pth keeps its arguments as a SimpleNamespace
        "sparseml": {"state_dict": plain, "args": SimpleNamespace(lr=0.1), "arch_key": "resnet18", "epoch": 2},
    }
    for name, state in files.items():
        torch.save(state, tmp_path / f"{name}.pt")
    prune.l1_unstructured(model.layer1[0].conv1, name="weight", amount=0.5)
    torch.save(model.state_dict(), tmp_path / "pruned.pt")
    return plain, model.layer1[0].conv1.weight.detach().clone(), tmp_path


@pytest.mark.parametrize("variant, note", [
    ("dataparallel", "stripped the 'module.' prefix"),
    ("compiled", "stripped the '_orig_mod.' prefix"),
    ("wrapped", "'model_state' entry"),
    ("lightning", "'state_dict' entry"),
    ("sparseml", "'state_dict' entry"),
    ("pruned", "weight_orig/weight_mask pair(s)"),
])
def test_weights_in_the_forms_checkpoints_come_in_load_and_say_so(variant, note, weight_files):
    plain, pruned_weight, tmp_path = weight_files
    model = load_model("torchvision:resnet18", 1, (3, 32, 32)).module
    notes = load_weights(model, tmp_path / f"{variant}.pt")
    assert any(note in line for line in notes), notes
    expected = pruned_weight if variant == "pruned" else plain["layer1.0.conv1.weight"]
    assert torch.equal(model.layer1[0].conv1.weight.detach(), expected)
    assert torch.equal(model.fc.weight.detach(), plain["fc.weight"])
    if variant == "pruned":
        assert float((model.layer1[0].conv1.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)


def test_weights_that_do_not_fit_name_the_keys(tmp_path):
    state = load_model("torchvision:resnet18", 1, (3, 32, 32)).module.state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(SpdyError, match=r"1 missing key\(s\): fc.bias; 1 unexpected key\(s\): extra.weight"):
        load_model("torchvision:resnet18", 1, (3, 32, 32), str(tmp_path / "odd.pt"))
    torch.save({"a": {"x": torch.zeros(1)}, "b": {"y": torch.zeros(1)}}, tmp_path / "two.pt")
    with pytest.raises(SpdyError, match="dicts of tensors under 'a', 'b': which one is the model"):
        load_model("torchvision:resnet18", 1, (3, 32, 32), str(tmp_path / "two.pt"))


# --- 4. layers that run only in training -----------------------------------------------------------------


def test_training_only_heads_stay_dense(tmp_path):
    _, layer_map = _mapped(f"{KIND}:aux_head", (3, 32, 32), tmp_path)
    assert [layer.name for layer in layer_map.layers] == ["stem.weight", "late.weight", "head.weight"]
    assert "never called in the eval forward pass" in layer_map.left_dense["aux.weight"]


def test_training_only_heads_train_with_their_loss_weight():
    from integrations.torchvision.train import AUX_LOSS_WEIGHT, classification_loss

    model = load_model(f"{KIND}:aux_head", 2, (3, 32, 32)).module.train()
    logits, aux = model(torch.randn(2, 3, 32, 32))  # training returns the aux logits too, as GoogLeNet does
    labels = torch.tensor([1, 2])
    criterion = nn.CrossEntropyLoss()
    loss = classification_loss(criterion, (logits, aux), labels)
    assert float(loss) == pytest.approx(float(criterion(logits, labels) + AUX_LOSS_WEIGHT * criterion(aux, labels)))
    loss.backward()
    assert model.aux.weight.grad is not None


# --- 5. builders that would download ---------------------------------------------------------------------


def test_segmentation_builds_offline_and_detection_is_refused_in_one_line(tmp_path):
    bundle = load_model("torchvision:lraspp_mobilenet_v3_large", 1, (3, 32, 32))  # fetched ImageNet weights before
    assert prunable_layers(bundle.module)
    with pytest.raises(SpdyError, match="^torchvision:fasterrcnn_resnet50_fpn is not supported: detection models"):
        load_model("torchvision:fasterrcnn_resnet50_fpn", 1)


# --- 7. layers that must not be pruned -------------------------------------------------------------------


def test_reparametrised_frozen_and_grouped_layers_stay_dense_with_the_reason():
    left = layer_survey(load_model(f"{KIND}:reparametrised", 1, (3, 32, 32)).module)[1]
    assert "torch.nn.utils.prune" in left["middle.weight"]
    assert "parametrization" in left["late.weight"]
    assert "frozen" in left["last.weight"]
    grouped = load_model(f"{KIND}:grouped", 1, (3, 32, 32)).module
    assert "grouped convolution (groups=4)" in layer_survey(grouped)[1]["middle.weight"]
    assert [layer.name for layer in prunable_layers(grouped)] == ["stem.weight", "late.weight", "last.weight",
                                                                 "head.weight"]


# --- 8. shared modules -----------------------------------------------------------------------------------


def test_a_module_called_several_times_is_one_layer_with_every_call_mapped(tmp_path):
    bundle, layer_map = _mapped(f"{KIND}:shared_blocks", (3, 32, 32), tmp_path)
    assert [layer.name for layer in layer_map.layers] == ["stem.weight", "block.weight", "mix.weight", "head.weight"]
    assert layer_map.flops["block.weight"] == 3 * 2 * (32 * 9) * (2 * 32 * 32 * 32)
    assert layer_map.flops["mix.weight"] == 2 * 2 * 32 * (2 * 32)
    calls = {module: list(layer_map.output_module.values()).count(module) for module in ("block", "mix")}
    assert calls["block"] >= 3 and calls["mix"] >= 2  # every call's nodes map to the one module


# --- 9. other inputs -------------------------------------------------------------------------------------


def test_hf_vision_models_take_pixel_values(tmp_path):
    folder = write_hf_config(tmp_path / "vit", "vit")
    bundle, layer_map = _mapped(f"hf:{folder}", None, tmp_path)
    assert list(bundle.inputs) == ["pixel_values"] and bundle.input_shape == (3, 32, 32)
    assert layer_map.layers[-1].name == "classifier.weight"


def test_conv_transpose_flops_count_inputs_times_the_kernel():
    model = load_model(f"{KIND}:upsampler", 2, (3, 32, 32)).module
    layers = {layer.name: layer for layer in prunable_layers(model)}
    assert layers["up.weight"].shape == (32, 16, 4, 4)  # (in, out/groups, kh, kw)
    flops = layer_flops(model, {"input": torch.randn(2, 3, 32, 32)}, list(layers.values()))
    # every one of the 2x32x16x16 input values feeds 16x4x4 outputs
    assert flops["up.weight"] == 2 * (2 * 32 * 16 * 16) * (16 * 4 * 4)


# --- 11. hf:DIR:CLASS with text calibration; verify at other settings ------------------------------------


def test_a_task_class_spec_finds_the_tokenizer_in_its_folder():
    from spdy_recipes.calibration import load_calibration

    from .test_calibration import MINILM_DIR

    bundle = load_model(f"hf:{MINILM_DIR}:BertForSequenceClassification", 2, (32,))
    calibration, held_out = load_calibration("builtin:text", bundle, 4, 2)
    assert calibration.inputs["input_ids"].shape == (4, 32) and len(held_out) == 2


def test_verify_warns_when_measuring_at_other_settings_than_the_recipes(capsys):
    from spdy_recipes.entrypoints.verify import warn_if_other_setting

    bundle = load_model(f"{KIND}:aux_head", 4, (3, 32, 32))
    recipe = {"batch_size": 4, "cores": 2, "input_shapes": {"input": [3, 32, 32]}}
    warn_if_other_setting(recipe, bundle, 2)
    assert capsys.readouterr().err == ""
    warn_if_other_setting({**recipe, "batch_size": 16, "input_shapes": {"input": [3, 64, 64]}}, bundle, 1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "warning: measuring at batch size 4, but the recipe was solved for batch size 16: the speedup differs "
        "between them",
        "warning: measuring at cores 1, but the recipe was solved for cores 2: the speedup differs between them",
        "warning: measuring at input shape input 3,32,32, but the recipe was solved for input shape input "
        "3,64,64: the speedup differs between them",
    ]


def test_unreadable_weights_and_failing_python_models_are_one_line(tmp_path):
    (tmp_path / "notes.pt").write_text("101 not a checkpoint")
    with pytest.raises(SpdyError, match="not a torch or safetensors weights file"):
        load_model("torchvision:resnet18", 1, (3, 32, 32), str(tmp_path / "notes.pt"))
    torch.save(nn.Linear(2, 2), tmp_path / "whole.pt")  # a whole model, not its state_dict
    with pytest.raises(SpdyError, match=r"pickled Python objects.*save model.state_dict\(\) instead") as raised:
        load_model("torchvision:resnet18", 1, (3, 32, 32), str(tmp_path / "whole.pt"))
    assert "\x1b" not in str(raised.value)
    with pytest.raises(SpdyError, match="holds none of model.pt"):
        load_model("torchvision:resnet18", 1, (3, 32, 32), str(tmp_path))
    with pytest.raises(SpdyError, match="failed to build: TypeError: "):
        load_model("python:tests.kind_models:write_hf_config", 1, (3, 32, 32))  # a callable that needs arguments
