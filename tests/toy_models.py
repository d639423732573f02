"""Small real models for tests: a CNN and a BERT config, both built from code (nothing downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn


class SmallCNN(nn.Module):
    """Four convolutions and a classifier; big enough for DeepSparse's sparse kernels to matter."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.body = nn.Sequential(
            nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(64, 128, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(128, classes)

    def forward(self, x):
        x = self.body(self.stem(x).relu())
        return self.head(x.mean(dim=(2, 3)))


def small_cnn() -> nn.Module:
    return SmallCNN()


def write_tiny_bert(folder: Path) -> Path:
    """A 2-layer BERT sequence classifier config, as ``hf:`` loads it (weights initialised from the config)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 1000,
        "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 1024,
        "max_position_embeddings": 128, "num_labels": 2,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def write_tiny_bert_task(folder: Path, tokenizer_dir: Path) -> Path:
    """A 2-layer BERT sequence classifier saved as a real checkpoint folder (seeded random weights, config, and
    the tokenizer copied from ``tokenizer_dir``, whose vocabulary size it takes), as SparseML's transformers
    commands load it with ``--model_name_or_path``."""
    import shutil

    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, folder / name)
    vocab = transformers.AutoTokenizer.from_pretrained(str(folder)).vocab_size
    config = transformers.BertConfig(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=256, max_position_embeddings=128, num_labels=2,
                                     architectures=["BertForSequenceClassification"])
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(str(folder))
    return folder
