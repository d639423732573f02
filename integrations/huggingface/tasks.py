"""The two tasks: JSON-lines examples -> a task model, tokenized features and an eval metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import transformers
from torch.utils.data import Dataset

from spdy_recipes.errors import SpdyError, first_line

TASKS = ("text-classification", "question-answering")
FIELDS = {"text-classification": ("text", "label"), "question-answering": ("question", "context", "answers")}
METRIC = {"text-classification": "accuracy", "question-answering": "exact_match"}
OUTPUTS = {"text-classification": ["logits"], "question-answering": ["start_logits", "end_logits"]}


class Features(Dataset):
    """Tokenized examples: one dict of tensors per example."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: tensor[index] for name, tensor in self.tensors.items()}


def read_jsonl(path: str | Path, task: str) -> list[dict]:
    """The examples in ``path``, each checked for the fields ``task`` needs."""
    path = Path(path)
    if not path.is_file():
        raise SpdyError(f"data file {path} does not exist")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpdyError(f"{path}:{number}: not JSON ({exc.msg})") from None
        missing = [name for name in FIELDS[task] if not isinstance(row, dict) or name not in row]
        if missing:
            raise SpdyError(f"{path}:{number}: a {task} example needs {', '.join(FIELDS[task])}; "
                            f"missing {', '.join(missing)}")
        if task == "question-answering" and not _is_answers(row["answers"]):
            raise SpdyError(f'{path}:{number}: "answers" must be {{"text": [...], "answer_start": [...]}}')
        rows.append(row)
    if not rows:
        raise SpdyError(f"data file {path} has no examples")
    return rows


def _is_answers(answers: object) -> bool:
    if not isinstance(answers, dict):
        return False
    texts, starts = answers.get("text"), answers.get("answer_start")
    return isinstance(texts, list) and isinstance(starts, list) and len(texts) == len(starts)


def build_model(directory: str, task: str, num_labels: int | None) -> transformers.PreTrainedModel:
    """The task model on ``directory``: its weights when it has them (a new head), else its config."""
    path = Path(directory)
    overrides = {"num_labels": num_labels} if num_labels else {}
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), **overrides)
    except (OSError, ValueError) as exc:
        raise SpdyError(f"--model {directory}: not a transformers model or config folder ({exc})") from None
    auto = (transformers.AutoModelForSequenceClassification if task == "text-classification"
            else transformers.AutoModelForQuestionAnswering)
    if not any((path / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        return auto.from_config(config)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the new task head warns that it is newly initialised
    try:
        return auto.from_pretrained(str(path), config=config, local_files_only=True)
    finally:
        transformers.logging.set_verbosity(verbosity)


def load_tokenizer(directory: str) -> transformers.PreTrainedTokenizerFast:
    """The fast tokenizer saved in ``directory`` (question answering needs its character offsets)."""
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise SpdyError(f"no tokenizer in {directory} ({first_line(exc)}); pass --tokenizer DIR") from None
    if not tokenizer.is_fast:
        raise SpdyError(f"the tokenizer in {directory} is not a fast tokenizer; character offsets need one")
    return tokenizer


def encode(rows: list[dict], task: str, tokenizer, max_length: int) -> Features:
    """Tokenize ``rows`` to ``max_length`` (padded) with labels, or start/end positions for QA."""
    if task == "text-classification":
        tensors = tokenizer([row["text"] for row in rows], truncation=True, max_length=max_length,
                            padding="max_length", return_tensors="pt")
        return Features({**tensors, "labels": torch.tensor([int(row["label"]) for row in rows])})
    tensors = tokenizer([row["question"] for row in rows], [row["context"] for row in rows],
                        truncation="only_second", max_length=max_length, padding="max_length",
                        return_offsets_mapping=True, return_tensors="pt")
    offsets = tensors.pop("offset_mapping")
    spans = [_token_span(row, offsets[i], tensors.sequence_ids(i)) for i, row in enumerate(rows)]
    return Features({**tensors, "start_positions": torch.tensor([s for s, _ in spans]),
                     "end_positions": torch.tensor([e for _, e in spans])})


def _token_span(row: dict, offsets: torch.Tensor, sequence_ids: list[int | None]) -> tuple[int, int]:
    """The tokens of the first answer in the context, or (0, 0) (the [CLS] token) when truncated away."""
    answers = row["answers"]
    if not answers["text"]:
        return 0, 0
    start = int(answers["answer_start"][0])
    end = start + len(answers["text"][0])
    context = [i for i, sid in enumerate(sequence_ids) if sid == 1]
    first = next((i for i in context if offsets[i][1] > start), None)
    last = next((i for i in reversed(context) if offsets[i][0] < end), None)
    if first is None or last is None or offsets[context[-1]][1] < end:
        return 0, 0
    return first, last


def metrics(task: str):
    """``compute_metrics`` for the Trainer: accuracy, or exact match of the predicted token span."""

    def accuracy(prediction: transformers.EvalPrediction) -> dict[str, float]:
        hit = np.argmax(prediction.predictions, -1) == prediction.label_ids
        return {METRIC["text-classification"]: float(hit.mean())}

    def exact_match(prediction: transformers.EvalPrediction) -> dict[str, float]:
        start_logits, end_logits = prediction.predictions[:2]
        starts, ends = prediction.label_ids
        hit = (np.argmax(start_logits, -1) == starts) & (np.argmax(end_logits, -1) == ends)
        return {METRIC["question-answering"]: float(hit.mean())}

    return accuracy if task == "text-classification" else exact_match
