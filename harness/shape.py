"""One size dial (width) -> a full model shape, and its exact parameter counts in closed form.

Pure: no torch. `tests/test_model.py` checks every count against the built HF model, so the plan
can derive token budgets from exact counts (IsoFLOP design) without building a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from harness.config import ModelConfig


@dataclass(frozen=True)
class ModelShape:
    """Everything that fixes a model's architecture and size."""

    family: str  # llama | gpt2 | neox | lstm
    width: int  # d_model (lstm: the token embedding width, the first layer's input)
    depth: int  # transformer blocks (lstm: stacked LSTM layers)
    n_heads: int  # lstm: 0 (no attention)
    ffn_hidden: int  # MLP hidden width (llama: per gated branch; lstm: the LSTM's hidden and cell size)
    vocab_size: int
    seq_len: int  # context length (gpt2: number of learned positions)
    tie_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.width // self.n_heads if self.n_heads else 0


@dataclass(frozen=True)
class ParamCounts:
    """Parameters of a model, in units of scalars.

    embedding: input token embedding + learned position embedding (gpt2) + the output head when it
    is not tied to the input embedding. nonembedding = total - embedding (Kaplan et al. 2020's N).
    """

    total: int
    embedding: int
    nonembedding: int


def shape_for_width(width: int, model: ModelConfig, vocab_size: int, seq_len: int) -> ModelShape:
    """The shape at one setting of the size dial: depth = round(width / aspect), heads of head_dim.

    lstm: the depth of the llama of this width, and the hidden size that brings its total parameter
    count closest to that llama's (see `lstm_hidden_for`).
    """
    if model.family == "lstm":
        llama = shape_for_width(width, replace(model, family="llama"), vocab_size, seq_len)
        hidden = lstm_hidden_for(param_counts(llama).total, width, llama.depth, vocab_size)
        return replace(llama, family="lstm", n_heads=0, ffn_hidden=hidden)
    depth = max(1, round(width / model.aspect))
    hidden = model.ffn_mult * width
    if model.family == "llama":  # SwiGLU keeps params ~ ffn_mult * d^2 * 2 with 3 matrices
        hidden = 2 * hidden / 3
        ffn = int(-(-hidden // 8) * 8)
    else:
        ffn = int(round(hidden))
    return ModelShape(
        family=model.family,
        width=width,
        depth=depth,
        n_heads=width // model.head_dim,
        ffn_hidden=ffn,
        vocab_size=vocab_size,
        seq_len=seq_len,
        tie_embeddings=model.tie_embeddings,
    )


def lstm_hidden_for(total: int, width: int, depth: int, vocab_size: int) -> int:
    """The LSTM hidden size h whose model (`_lstm_counts`) has the total closest to `total`.

    The total is quadratic in h, (8 depth - 4) h^2 + (vocab + 4 width + 8 depth) h + vocab width;
    the positive root, rounded down or up, whichever lands closer.
    """
    a, b, c = 8 * depth - 4, vocab_size + 4 * width + 8 * depth, vocab_size * width - total
    root = int((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a))
    candidates = [h for h in (root, root + 1) if h >= 1]
    return min(candidates, key=lambda h: abs(_lstm_counts(width, h, depth, vocab_size).total - total))


def _lstm_counts(d: int, h: int, depth: int, v: int) -> ParamCounts:
    """torch nn.LSTM(d, h, depth) with both bias vectors per layer, a V x d embedding, an h -> V head."""
    first = 4 * h * (d + h) + 8 * h  # W_ih (4h x d), W_hh (4h x h), b_ih, b_hh
    rest = (depth - 1) * (8 * h * h + 8 * h)  # later layers read the h-wide state of the one below
    embedding = v * d + v * h
    return ParamCounts(total=embedding + first + rest, embedding=embedding, nonembedding=first + rest)


def param_counts(shape: ModelShape) -> ParamCounts:
    """Exact parameter counts of the model `harness.model.build_model(shape)` builds."""
    d, f, v = shape.width, shape.ffn_hidden, shape.vocab_size
    if shape.family == "lstm":
        return _lstm_counts(d, f, shape.depth, v)
    if shape.family == "llama":  # no biases, RMSNorm weight only
        block = 4 * d * d + 3 * d * f + 2 * d
        final_norm = d
        positions = 0
    elif shape.family == "gpt2":  # biases everywhere, LayerNorm weight + bias, learned positions
        block = (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
        final_norm = 2 * d
        positions = shape.seq_len * d
    elif shape.family == "neox":  # fused qkv with bias, LayerNorm weight + bias, rotary (no params)
        block = (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
        final_norm = 2 * d
        positions = 0
    else:
        raise ValueError(f"model.family: unknown family {shape.family!r}")
    embedding = v * d + positions + (0 if shape.tie_embeddings else v * d)
    nonembedding = shape.depth * block + final_norm
    return ParamCounts(total=embedding + nonembedding, embedding=embedding, nonembedding=nonembedding)
