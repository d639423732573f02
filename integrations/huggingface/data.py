"""Offline example data from the English paragraphs of Python's documentation, as JSON lines.

- text classification: ``{"text", "label"}``, label 1 when the words of the passage were shuffled;
- question answering (SQuAD form): the question is a stretch of the context with one word blanked out,
  the answer is that word's span in the context.

Train and eval passages come from disjoint paragraphs; a seed fixes everything.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path

from spdy_recipes.calibration import builtin_paragraphs
from spdy_recipes.files import atomic_write_text

PASSAGE_WORDS = 24  # classification passages: short enough for a 32-64 token window
CONTEXT_WORDS = 40
BLANK = "____"
_WORD = re.compile(r"[A-Za-z]{4,}")

Maker = Callable[[str, int, random.Random], dict]


def make_text_classification(out_dir: str | Path, samples: int = 256, seed: int = 0) -> Path:
    """Write ``train.jsonl`` (``samples`` passages) and ``eval.jsonl`` (a quarter as many) to ``out_dir``."""
    return _write(Path(out_dir), samples, seed, _passage)


def make_question_answering(out_dir: str | Path, samples: int = 256, seed: int = 0) -> Path:
    """Write cloze questions in SQuAD form to ``out_dir``/``train.jsonl`` and ``eval.jsonl``."""
    return _write(Path(out_dir), samples, seed, _cloze)


def _write(out_dir: Path, samples: int, seed: int, make: Maker) -> Path:
    rng = random.Random(seed)
    paragraphs = builtin_paragraphs()
    rng.shuffle(paragraphs)
    split = len(paragraphs) // 5
    for name, pool, count in (("train", paragraphs[split:], samples), ("eval", paragraphs[:split], samples // 4)):
        rows = [{"id": f"{name}-{i}", **make(pool[i % len(pool)], i, rng)} for i in range(count)]
        atomic_write_text(out_dir / f"{name}.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    return out_dir


def _passage(paragraph: str, index: int, rng: random.Random) -> dict:
    """A run of the paragraph's words, shuffled (label 1) for every other sample."""
    words = paragraph.split()
    start = rng.randrange(max(1, len(words) - PASSAGE_WORDS + 1))
    words = words[start:start + PASSAGE_WORDS]
    label = index % 2
    if label:
        original = words[:]
        while words == original:
            rng.shuffle(words)
    return {"text": " ".join(words), "label": label}


def _cloze(paragraph: str, index: int, rng: random.Random) -> dict:
    """Blank out a word that occurs once in the context, among its first words; ask for that word."""
    context = " ".join(paragraph.split()[:CONTEXT_WORDS])
    tokens = list(re.finditer(r"\S+", context))
    counts: dict[str, int] = {}
    for match in _WORD.finditer(context):
        counts[match.group().lower()] = counts.get(match.group().lower(), 0) + 1
    candidates = [(i, word) for i, token in enumerate(tokens[:PASSAGE_WORDS])
                  if (word := _WORD.search(token.group())) and counts[word.group().lower()] == 1]
    position, word = rng.choice(candidates or [(0, re.search(r"\w+", tokens[0].group()))])
    blanked = tokens[position].group().replace(word.group(), BLANK, 1)
    question = " ".join([t.group() for t in tokens[max(0, position - 6):position]] + [blanked]
                        + [t.group() for t in tokens[position + 1:position + 3]])
    return {"question": question, "context": context,
            "answers": {"text": [word.group()], "answer_start": [tokens[position].start() + word.start()]}}
