"""The Whisper network of a snapshot, for the calibrate job, without transformers' model
classes.

Importing `WhisperForConditionalGeneration` costs a calibrate job 2.6 s of CPU here and
5.8-7.4 s on the GPU machine (transformers 5 imports torch._dynamo and
torch.distributed with it), more than half of the job's start; the job needs only the
encoder's forward and the decoder's layers (decoding.Greedy runs those itself). This
module builds both from the snapshot's `config.json`, with transformers' parameter
names, and loads `model.safetensors` into them strictly: a missing, extra or misshaped
tensor is an error, never a silently random weight. The arithmetic is
WhisperEncoder's (tests/test_network.py checks the states and the tokens against
transformers' own model on trained weights).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from types import SimpleNamespace

# torch is imported inside the functions, as in decoding.py: the Snakefile imports the
# package while it plans the DAG.

WEIGHTS, WEIGHTS_INDEX = "model.safetensors", "model.safetensors.index.json"
CONFIG, GENERATION_CONFIG = "config.json", "generation_config.json"
_SIZES = (
    "d_model",
    "encoder_layers",
    "decoder_layers",
    "encoder_attention_heads",
    "decoder_attention_heads",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "num_mel_bins",
    "max_source_positions",
    "max_target_positions",
    "vocab_size",
)
_TIED = "proj_out.weight"  # the token embedding (tie_word_embeddings), often not saved


@dataclass
class EncoderOutput:
    last_hidden_state: object  # [B, max_source_positions, d_model]


def read_config(snapshot: str) -> SimpleNamespace:
    """config.json's sizes, checked, as attributes (what decoding.Greedy reads)."""
    path = os.path.join(snapshot, CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: no readable model config ({e})") from e
    missing = [k for k in _SIZES if not isinstance(cfg.get(k), int)]
    if missing:
        raise ValueError(f"{path}: no integer {missing}")
    if cfg.get("model_type") != "whisper" or cfg.get("scale_embedding"):
        raise ValueError(
            f"{path}: model_type {cfg.get('model_type')!r}, scale_embedding "
            f"{cfg.get('scale_embedding')!r}: not a Whisper this module builds"
        )
    if cfg.get("activation_function", "gelu") != "gelu":
        raise ValueError(f"{path}: activation_function {cfg['activation_function']!r}, not gelu")
    return SimpleNamespace(**cfg)


def read_generation_config(snapshot: str, config: SimpleNamespace) -> SimpleNamespace:
    """The token ids decoding.Greedy reads: generation_config.json's, else config.json's
    (what transformers falls back to)."""
    path = os.path.join(snapshot, GENERATION_CONFIG)
    gen = vars(config)
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                gen = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not readable ({e})") from e
    keys = ("eos_token_id", "suppress_tokens", "begin_suppress_tokens")
    return SimpleNamespace(**{k: gen.get(k) for k in keys})


def _modules():
    """The classes, made on first use (they subclass torch.nn.Module)."""
    import torch
    from torch import nn
    from torch.nn.functional import gelu, scaled_dot_product_attention

    def embedding(n: int, d: int):
        # given its (meta) weight, nn.Embedding skips normal_, which on the meta device
        # imports torch._dynamo (1.3 s)
        return nn.Embedding(n, d, _weight=torch.empty(n, d))

    class Attention(nn.Module):
        def __init__(self, d: int, heads: int):
            super().__init__()
            self.n_heads, self.scaling = heads, (d // heads) ** -0.5
            self.q_proj, self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
            self.k_proj = nn.Linear(d, d, bias=False)

        def forward(self, x):  # self-attention without a mask: the encoder's
            b, t, d = x.shape

            def heads(y):
                return y.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

            # the query scaled before the product, sdpa at scale 1: transformers' order
            q = heads(self.q_proj(x) * self.scaling)
            a = scaled_dot_product_attention(q, heads(self.k_proj(x)), heads(self.v_proj(x)), scale=1.0)
            return self.out_proj(a.transpose(1, 2).reshape(b, t, d))

    class Layer(nn.Module):
        def __init__(self, d: int, heads: int, ffn: int, cross: bool):
            super().__init__()
            self.self_attn, self.self_attn_layer_norm = Attention(d, heads), nn.LayerNorm(d)
            if cross:
                self.encoder_attn, self.encoder_attn_layer_norm = Attention(d, heads), nn.LayerNorm(d)
            self.fc1, self.fc2, self.final_layer_norm = nn.Linear(d, ffn), nn.Linear(ffn, d), nn.LayerNorm(d)
            self.activation_fn = gelu

        def forward(self, x):
            x = x + self.self_attn(self.self_attn_layer_norm(x))
            return x + self.fc2(gelu(self.fc1(self.final_layer_norm(x))))

    class Encoder(nn.Module):
        def __init__(self, c):
            super().__init__()
            d = c.d_model
            self.conv1 = nn.Conv1d(c.num_mel_bins, d, kernel_size=3, padding=1)
            self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
            self.embed_positions = embedding(c.max_source_positions, d)
            ffn, heads = c.encoder_ffn_dim, c.encoder_attention_heads
            self.layers = nn.ModuleList(Layer(d, heads, ffn, cross=False) for _ in range(c.encoder_layers))
            self.layer_norm = nn.LayerNorm(d)

        def forward(self, features):  # [B, n_mels, 3000] -> EncoderOutput
            x = gelu(self.conv2(gelu(self.conv1(features)))).permute(0, 2, 1)
            x = x + self.embed_positions.weight
            for layer in self.layers:
                x = layer(x)
            return EncoderOutput(self.layer_norm(x))

    class Decoder(nn.Module):  # parameters only: decoding.Greedy runs the layers itself
        def __init__(self, c):
            super().__init__()
            d = c.d_model
            self.embed_tokens = embedding(c.vocab_size, d)
            self.embed_positions = embedding(c.max_target_positions, d)
            ffn, heads = c.decoder_ffn_dim, c.decoder_attention_heads
            self.layers = nn.ModuleList(Layer(d, heads, ffn, cross=True) for _ in range(c.decoder_layers))
            self.layer_norm = nn.LayerNorm(d)

    class Whisper(nn.Module):
        def __init__(self, config, generation_config):
            super().__init__()
            self.config, self.generation_config = config, generation_config
            self.model = nn.Module()
            self.model.encoder, self.model.decoder = Encoder(config), Decoder(config)
            self.proj_out = nn.Linear(config.d_model, config.vocab_size, bias=False)

        def get_encoder(self):
            return self.model.encoder

        def get_decoder(self):
            return self.model.decoder

        @property
        def device(self):
            return self.proj_out.weight.device

        @property
        def dtype(self):
            return self.proj_out.weight.dtype

    return torch, Whisper


def load(snapshot: str, device: str = "cpu"):
    """The snapshot's float32 network on `device`, in eval mode: its tensors read straight
    onto the device, nothing initialised at random first."""
    torch, Whisper = _modules()
    config = read_config(snapshot)
    with torch.device("meta"):
        model = Whisper(config, read_generation_config(snapshot, config))
    weights = _read_weights(snapshot, str(device))
    if _TIED not in weights and getattr(config, "tie_word_embeddings", True):
        weights[_TIED] = weights.get("model.decoder.embed_tokens.weight")
    expected = model.state_dict()
    missing = sorted(k for k in expected if weights.get(k) is None)
    extra = sorted(set(weights) - set(expected))
    wrong = [k for k in expected if k not in missing and tuple(weights[k].shape) != tuple(expected[k].shape)]
    if missing or extra or wrong:
        raise ValueError(
            f"{snapshot}/{WEIGHTS}: not this config's Whisper: missing {missing[:5]}, unexpected {extra[:5]}, "
            f"misshaped {[(k, list(weights[k].shape)) for k in wrong[:5]]}"
        )
    model.load_state_dict({k: v.float() for k, v in weights.items()}, assign=True)
    if getattr(config, "tie_word_embeddings", True):
        model.proj_out.weight = model.model.decoder.embed_tokens.weight
    return model.eval()


def _read_weights(snapshot: str, device: str) -> dict:
    from safetensors.torch import load_file

    index = os.path.join(snapshot, WEIGHTS_INDEX)
    if os.path.exists(index):  # sharded: save_pretrained's split of a large model
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = [WEIGHTS]
    weights = {}
    for name in files:
        path = os.path.join(snapshot, name)
        if os.path.basename(name) != name:
            raise ValueError(f"{index}: shard {name!r} is not a file of the snapshot folder")
        try:
            weights.update(load_file(path, device=device))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot read the weights ({e})") from e
    return weights
