"""Hugging Face models (``hf:DIR`` or ``hf:DIR:ClassName``): built from a folder's config (and weights when
it holds them), with inputs of the model's kind: token ids (and decoder ids for encoder-decoders) or pixels."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import SpdyError

DEFAULT_SEQUENCE = (128,)  # tokens, when --input-shape is not given


def _split_hf_class(target: str) -> tuple[str, str | None]:
    """``DIR`` or ``DIR:ClassName`` (a transformers model class, e.g. BertForSequenceClassification)."""
    directory, _, name = target.rpartition(":")
    if directory and name.isidentifier() and not Path(target).exists():
        return directory, name
    return target, None


def build_huggingface(target: str, shape: tuple[int, ...] | None):
    import transformers

    directory, class_name = _split_hf_class(target)
    path = Path(directory)
    config_file = path / "config.json" if path.is_dir() else path
    if not config_file.is_file():
        raise SpdyError(f"hf model {directory!r}: no config.json found there")
    try:
        config = transformers.AutoConfig.from_pretrained(str(config_file.parent if path.is_dir() else path))
    except (OSError, ValueError) as exc:
        raise SpdyError(f"hf model {directory!r}: cannot read its config ({exc})") from None
    architectures = getattr(config, "architectures", None) or []
    model_class = getattr(transformers, class_name or (architectures[0] if architectures else ""), None)
    if class_name and not (isinstance(model_class, type) and issubclass(model_class, transformers.PreTrainedModel)):
        raise SpdyError(f"hf model {target!r}: transformers has no model class {class_name!r}")
    model_class = model_class or transformers.AutoModel
    has_weights = path.is_dir() and any((path / f).is_file() for f in ("model.safetensors", "pytorch_model.bin"))
    if has_weights:
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # a new task head warns that it is newly initialised
        try:
            module = model_class.from_pretrained(str(path), local_files_only=True)
        finally:
            transformers.logging.set_verbosity(verbosity)
    elif model_class is transformers.AutoModel:
        module = transformers.AutoModel.from_config(config)
    else:
        module = model_class(config)
    module.config.return_dict = False
    if hasattr(module.config, "use_cache"):
        module.config.use_cache = False  # no key/value cache in the exported graph
    if getattr(module, "main_input_name", "input_ids") == "pixel_values":
        return module, *_hf_image_inputs(config, shape)
    shape = shape or DEFAULT_SEQUENCE
    if len(shape) != 1:
        raise SpdyError(f"hf models take --input-shape SEQ_LEN, got {','.join(map(str, shape))}")
    vocab = int(getattr(config, "vocab_size", 1000))
    eos = getattr(config, "eos_token_id", None) if config.is_encoder_decoder else None

    def make(batch: int) -> dict[str, torch.Tensor]:
        ids = torch.randint(0, vocab, (batch, shape[0]), generator=torch.Generator().manual_seed(0))
        if eos is not None:  # BART-style heads read the last end-of-sequence token: exactly one per row
            ids[ids == eos] = (eos + 1) % vocab
            ids[:, -1] = eos
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if config.is_encoder_decoder and not type(module).__name__.endswith(SELF_SHIFTING_HEADS):
            inputs["decoder_input_ids"] = decoder_input_ids(config, ids)
        return inputs

    return module, shape, make


# encoder-decoder task heads that build their decoder inputs from input_ids themselves (BART, T5)
SELF_SHIFTING_HEADS = ("ForSequenceClassification", "ForQuestionAnswering")


def _hf_image_inputs(config, shape: tuple[int, ...] | None):
    """ViT-style models take ``pixel_values`` (channels, size, size) from their config."""
    size = getattr(config, "image_size", 224)
    size = size if isinstance(size, int) else size[0]
    shape = shape or (int(getattr(config, "num_channels", 3)), size, size)
    if len(shape) != 3:
        raise SpdyError(f"hf vision models take --input-shape C,H,W, got {','.join(map(str, shape))}")

    def make(batch: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": torch.randn(batch, *shape)}

    return shape, make


def decoder_input_ids(config, input_ids: torch.Tensor) -> torch.Tensor:
    """An encoder-decoder model's decoder inputs for ``input_ids`` (batch, seq): the ids shifted right by one
    behind the decoder start token, as transformers' seq2seq models build them from labels in training."""
    start = getattr(config, "decoder_start_token_id", None)
    start = start if start is not None else (getattr(config, "pad_token_id", None) or 0)
    shifted = input_ids.new_full(input_ids.shape, start)
    shifted[:, 1:] = input_ids[:, :-1]
    return shifted


def hf_directory(spec: str) -> Path:
    """The folder an ``hf:DIR`` or ``hf:DIR:CLASS`` spec names (its config, weights and tokenizer)."""
    directory, _ = _split_hf_class(spec.partition(":")[2])
    path = Path(directory)
    return path if path.is_dir() else path.parent
