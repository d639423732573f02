"""One small model per kind of architecture that used to break profiling, recipes or training (issue 13).

Each is built from code or a config written here (nothing downloaded) and is as small as the kind allows:
``python:tests.kind_models:NAME`` specs for the torch modules, ``write_hf_config`` for transformers folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune
from torch.nn.utils.parametrizations import weight_norm


class AttentionEncoder(nn.Module):
    """torch's own nn.TransformerEncoder: Q/K/V in one ``in_proj_weight`` Parameter, ``out_proj`` applied
    by MultiheadAttention without calling the module. Input (batch, 16, 64)."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.encoder(x).mean(1))


class Convs(nn.Module):
    """Four 3x3 convolutions and a classifier over (3, 32, 32) images; the variants below change one layer."""

    def __init__(self, groups: int = 1) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.middle = nn.Conv2d(32, 64, 3, padding=1, groups=groups)
        self.late = nn.Conv2d(64, 64, 3, padding=1)
        self.last = nn.Conv2d(64, 64, 1)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.middle(x))
        x = torch.relu(self.late(x))
        return self.head(self.last(x).mean((2, 3)))


class SharedBlocks(nn.Module):
    """One conv applied three times and one Linear twice (weights shared across depth, as in ALBERT)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.block = nn.Conv2d(32, 32, 3, padding=1)
        self.mix = nn.Linear(32, 32)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        for _ in range(3):
            x = x + torch.relu(self.block(x))
        v = x.mean((2, 3))
        for _ in range(2):
            v = torch.relu(self.mix(v))
        return self.head(v)


class Upsampler(nn.Module):
    """A downsampling conv and a ConvTranspose2d back up: (3, 32, 32) in, (4, 32, 32) out."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
        self.out = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.out(torch.relu(self.up(torch.relu(self.down(x)))))


class AuxHead(nn.Module):
    """A classifier with an auxiliary head that runs only in training (as GoogLeNet's and Inception-v3's):
    training returns (logits, aux logits), eval the logits."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.aux = nn.Linear(32, 10)
        self.late = nn.Conv2d(32, 32, 3, padding=1)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        aux = self.aux(x.mean((2, 3))) if self.training else None
        logits = self.head(torch.relu(self.late(x)).mean((2, 3)))
        return (logits, aux) if self.training else logits


def attention_encoder() -> nn.Module:
    return AttentionEncoder()


def torchvision_vit() -> nn.Module:
    """torchvision's VisionTransformer class (as in vit_b_16), one 32-wide layer over (3, 32, 32) images."""
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=32, mlp_dim=64)


def grouped() -> nn.Module:
    """``middle`` is a grouped (not depthwise) convolution, groups=4."""
    return Convs(groups=4)


def reparametrised() -> nn.Module:
    """``middle`` keeps a torch.nn.utils.prune hook, ``late`` is weight_norm'ed, ``last`` is frozen."""
    model = Convs()
    prune.l1_unstructured(model.middle, name="weight", amount=0.5)
    weight_norm(model.late)
    model.last.requires_grad_(False)
    return model


def shared_blocks() -> nn.Module:
    return SharedBlocks()


def upsampler() -> nn.Module:
    return Upsampler()


def aux_head() -> nn.Module:
    return AuxHead()


def yolov8n() -> nn.Module:
    """YOLOv8n from the yaml the ultralytics package ships (3 classes, export mode: one output tensor); its
    ``model.22.dfl.conv`` is frozen (requires_grad=False) and hand-set: it decodes box distributions."""
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    model.model[-1].export = True
    return model


_COMMON = {"vocab_size": 512, "max_position_embeddings": 64, "num_labels": 2}
HF_CONFIGS = {  # name -> config.json of a tiny model of that family (random init from the config)
    "gpt2": {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 4,
             "n_positions": 64, "vocab_size": 512, "tie_word_embeddings": True},
    "llama": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
              "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
              "max_position_embeddings": 64, "vocab_size": 512, "tie_word_embeddings": False},
    "bart": {"architectures": ["BartForSequenceClassification"], "model_type": "bart", "d_model": 64,
             "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
             "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, **_COMMON},
    "t5": {"architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "d_model": 64, "d_kv": 16,
           "d_ff": 128, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 4, "vocab_size": 512,
           "decoder_start_token_id": 0, "tie_word_embeddings": True},
    "albert": {"architectures": ["AlbertForSequenceClassification"], "model_type": "albert", "hidden_size": 64,
               "embedding_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 128,
               **_COMMON},
    "vit": {"architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128, "image_size": 32,
            "patch_size": 8, "num_labels": 10},
    "mobilebert": {"architectures": ["MobileBertForSequenceClassification"], "model_type": "mobilebert",
                   "hidden_size": 64, "embedding_size": 32, "intra_bottleneck_size": 32, "true_hidden_size": 32,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
                   "num_feedforward_networks": 2, **_COMMON},
}


def write_hf_config(folder: Path, name: str) -> Path:
    """``folder/config.json`` for the tiny model ``name`` (a key of ``HF_CONFIGS``); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(HF_CONFIGS[name]))
    return folder
