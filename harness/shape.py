"""One size dial (width) -> a full model shape, and its exact parameter counts in closed form.

Pure: no torch. `tests/test_model.py` checks every count against the built HF model, so the plan
can derive token budgets from exact counts (IsoFLOP design) without building a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import ModelConfig


@dataclass(frozen=True)
class ModelShape:
    """Everything that fixes a model's architecture and size."""

    family: str  # llama | gpt2 | neox
    width: int  # d_model
    depth: int  # transformer blocks
    n_heads: int
    ffn_hidden: int  # MLP hidden width (llama: per gated branch)
    vocab_size: int
    seq_len: int  # context length (gpt2: number of learned positions)
    tie_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.width // self.n_heads


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
    """The shape at one setting of the size dial: depth = round(width / aspect), heads of head_dim."""
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


def param_counts(shape: ModelShape) -> ParamCounts:
    """Exact parameter counts of the HF model `harness.model.build_model(shape)` builds."""
    d, f, v = shape.width, shape.ffn_hidden, shape.vocab_size
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
