"""Texts (a ``.txt`` file, a text column, ``builtin:text``) tokenised with the hf model's own tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import SpdyError
from ..models.hf import decoder_input_ids, hf_directory
from ..models.spec import ModelBundle
from .sets import CalibrationSet, Request, pick, subset

if TYPE_CHECKING:
    import transformers


def from_texts(
    texts: list[str], labels: list[int] | None, where: str, request: Request
) -> tuple[CalibrationSet, CalibrationSet]:
    """Tokenise the seeded choice of texts with the model's own tokenizer, padded or cut to its sequence length."""
    bundle = request.bundle
    if bundle.kind != "hf" or "input_ids" not in bundle.inputs:
        raise SpdyError(f"text calibration data needs an hf model that takes input_ids; {bundle.spec} takes "
                        f"{', '.join(bundle.inputs)}")
    length = bundle.input_shape[0]
    tokenizer = _tokenizer(bundle)
    calibration, held_out = pick(len(texts), request, where)
    rows = torch.cat([calibration, held_out]).tolist()
    encoded = tokenizer([texts[row] for row in rows], padding="max_length", truncation=True,
                        max_length=length, return_tensors="pt")
    inputs = {name: _token_tensor(encoded, name, bundle) for name in bundle.inputs}
    chosen_labels = None if labels is None else torch.tensor([labels[row] for row in rows], dtype=torch.int64)
    positions = torch.arange(len(rows))
    describe = f"of {len(texts)} texts from {where}, tokenised to {length} tokens"
    return (
        subset(inputs, chosen_labels, positions[:request.samples], f"{request.samples} {describe}"),
        subset(inputs, chosen_labels, positions[request.samples:], f"{request.holdout} {describe}"),
    )


def _tokenizer(bundle: ModelBundle) -> transformers.PreTrainedTokenizerBase:
    """The tokenizer saved in the hf model's folder."""
    import transformers

    folder = hf_directory(bundle.spec)
    try:
        return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError):  # transformers' ways of saying it found no tokenizer it can build
        raise SpdyError(
            f"text calibration data needs a tokenizer, and the hf model folder {folder} has none that "
            "transformers can load (save one there with tokenizer.save_pretrained)"
        ) from None


def _token_tensor(encoded: transformers.BatchEncoding, name: str, bundle: ModelBundle) -> torch.Tensor:
    if name in encoded:
        return encoded[name].to(bundle.inputs[name].dtype)
    if name == "token_type_ids":
        return torch.zeros_like(encoded["input_ids"], dtype=bundle.inputs[name].dtype)
    if name == "decoder_input_ids":
        return decoder_input_ids(bundle.module.config, encoded["input_ids"]).to(bundle.inputs[name].dtype)
    raise SpdyError(f"the tokenizer of {bundle.spec} gives no {name!r}, which the model takes")


def read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpdyError(f"cannot read calibration text {path}: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
