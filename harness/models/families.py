"""One record per model family: what the harness knows about it, in one place. Pure: no torch.

A `Family` gives the family's MLP (or LSTM) hidden-width rule, its exact parameter counts and matmul
weights in closed form, whether it has attention, its own config checks, and how to build it (imported
only when a model is built). A new family is one record in `FAMILIES` plus `configs/model/<name>.yaml`;
`tests/test_model.py` checks every record's counts against the built model and `tests/test_flops.py`
its matmul weights against torch's flop counter.

Symbols: d = width, f = ffn_hidden (lstm: its hidden size h), V = vocab_size, T = seq_len, L = depth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from harness.config import ConfigError, ModelConfig
from harness.models.shape import ModelShape, ParamCounts

Counter = Callable[[ModelShape], tuple[int, int]]  # shape -> exact (embedding, nonembedding) parameters


@dataclass(frozen=True)
class Family:
    """What the harness knows about one architecture family."""

    name: str
    attention: bool  # has self-attention: an attention FLOP term, and the width must split into heads
    hidden: Callable[[ModelShape, float], int]  # (shape without its hidden width, ffn_mult) -> ffn_hidden
    counts: Counter  # exact (embedding, nonembedding) parameters
    matmuls: Callable[[ModelShape], int]  # matmul weights per token, LM head included (see matmul_params)
    build: Callable[[ModelShape], Any]  # shape -> a fresh torch module (imports torch/transformers itself)
    # torch.compile can compile it (dynamo skips nn.LSTM; traced, inductor unrolls it for minutes)
    compiles: bool = True

    def check(self, model: ModelConfig, widths: list[int], compile: bool = False) -> None:
        """One-line ConfigError for settings this family cannot build or train."""
        if compile and not self.compiles:
            raise ConfigError(
                f"train.compile: torch.compile does not compile model.family={self.name}; must be false"
            )
        if not self.attention and model.tie_embeddings:
            raise ConfigError(
                f"model.tie_embeddings: model.family={self.name} has an untied head; must be false"
            )
        divisor, name = (model.n_heads, "n_heads") if model.n_heads else (model.head_dim, "head_dim")
        for i, w in enumerate(widths):
            if self.attention and w % divisor:
                raise ConfigError(
                    f"sweep.widths[{i}]: width {w} is not divisible by model.{name}={divisor} "
                    f"(heads = {'n_heads' if model.n_heads else 'width / head_dim'})"
                )


def _gated_hidden(s: ModelShape, ffn_mult: float) -> int:
    # SwiGLU keeps params ~ ffn_mult * d^2 * 2 with 3 matrices: 2/3 of ffn_mult * d, rounded up to 8
    return int(-(-(2 * ffn_mult * s.width / 3) // 8) * 8)


def _plain_hidden(s: ModelShape, ffn_mult: float) -> int:
    return int(round(ffn_mult * s.width))


def _lstm_hidden(s: ModelShape, ffn_mult: float) -> int:
    """The hidden size whose LSTM has the total parameters closest to the llama of this width and depth."""
    llama = replace(s, family="llama", tie_embeddings=False)
    return lstm_hidden_for(param_counts(replace(llama, ffn_hidden=_gated_hidden(llama, ffn_mult))).total,
                           s.width, s.depth, s.vocab_size)  # fmt: skip


def _transformer(block: Callable[[ModelShape], tuple[int, int, int]]) -> Counter:
    """(embedding, nonembedding) from a family's (per block, final norm, learned positions) counts."""

    def counts(s: ModelShape) -> tuple[int, int]:
        per_block, final_norm, positions = block(s)
        embedding = s.vocab_size * s.width * (1 if s.tie_embeddings else 2) + positions
        return embedding, s.depth * per_block + final_norm

    return counts


def _llama_block(s: ModelShape) -> tuple[int, int, int]:  # no biases, RMSNorm weight only
    d, f = s.width, s.ffn_hidden
    return 4 * d * d + 3 * d * f + 2 * d, d, 0


def _biased_block(s: ModelShape) -> int:  # qkv, o, up, down with biases; two LayerNorms (weight + bias)
    d, f = s.width, s.ffn_hidden
    return (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d


def _gpt2_block(s: ModelShape) -> tuple[int, int, int]:  # learned positions
    return _biased_block(s), 2 * s.width, s.seq_len * s.width


def _neox_block(s: ModelShape) -> tuple[int, int, int]:  # fused qkv with bias, rotary (no params)
    return _biased_block(s), 2 * s.width, 0


def _lstm_params(s: ModelShape) -> tuple[int, int]:
    return lstm_counts(s.width, s.ffn_hidden, s.depth, s.vocab_size)


def _attention_matmuls(mlp_matrices: int) -> Callable[[ModelShape], int]:
    def matmuls(s: ModelShape) -> int:  # q, k, v, o and the MLP's d x f matrices per block; the V x d head
        d = s.width
        return s.depth * (4 * d * d + mlp_matrices * d * s.ffn_hidden) + s.vocab_size * d

    return matmuls


def _lstm_matmuls(s: ModelShape) -> int:  # four gates' input and recurrent matrices per layer; the h x V head
    d, h = s.width, s.ffn_hidden
    return 4 * h * (d + h) + (s.depth - 1) * 8 * h * h + h * s.vocab_size


def _hf_builder(config: Callable[[ModelShape], Any]) -> Callable[[ModelShape], Any]:
    def build(s: ModelShape) -> Any:
        from harness.models.build import build_hf

        return build_hf(config(s))

    return build


def _common_hf(s: ModelShape) -> dict:
    # special token ids None: our tokenizers define their own, and the families' defaults (gpt2's
    # 50256) lie outside a small vocabulary
    return dict(vocab_size=s.vocab_size, tie_word_embeddings=s.tie_embeddings, use_cache=False,
                bos_token_id=None, eos_token_id=None, pad_token_id=None)  # fmt: skip


def _llama_config(s: ModelShape) -> Any:  # SwiGLU MLP, RMSNorm, rotary, no biases, multi-head (no GQA)
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=s.width, num_hidden_layers=s.depth, num_attention_heads=s.n_heads,
        num_key_value_heads=s.n_heads, intermediate_size=s.ffn_hidden, max_position_embeddings=s.seq_len,
        attention_bias=False, mlp_bias=False, attention_dropout=0.0, **_common_hf(s),
    )  # fmt: skip


def _gpt2_config(s: ModelShape) -> Any:  # GELU MLP, LayerNorm, learned positions, biases everywhere
    from transformers import GPT2Config

    # exact GELU (as nanoGPT and neox) rather than GPT-2's tanh approximation ("gelu_new"), which
    # transformers computes in 6 elementwise ops: 20% of a width-128 training step on cpu
    return GPT2Config(
        n_embd=s.width, n_layer=s.depth, n_head=s.n_heads, n_inner=s.ffn_hidden, n_positions=s.seq_len,
        activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        summary_first_dropout=0.0, **_common_hf(s),
    )  # fmt: skip


def _neox_config(s: ModelShape) -> Any:  # GELU MLP, LayerNorm, parallel residual, partial rotary (defaults)
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(
        hidden_size=s.width, num_hidden_layers=s.depth, num_attention_heads=s.n_heads,
        intermediate_size=s.ffn_hidden, max_position_embeddings=s.seq_len, attention_dropout=0.0,
        hidden_dropout=0.0, **_common_hf(s),
    )  # fmt: skip


def _build_lstm(s: ModelShape) -> Any:
    from harness.models.lstm import LSTMLanguageModel

    return LSTMLanguageModel(s)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        # name, attention, hidden width rule, parameter counts, matmul weights, builder
        Family("llama", True, _gated_hidden, _transformer(_llama_block), _attention_matmuls(3),
               _hf_builder(_llama_config)),
        Family("gpt2", True, _plain_hidden, _transformer(_gpt2_block), _attention_matmuls(2),
               _hf_builder(_gpt2_config)),
        Family("neox", True, _plain_hidden, _transformer(_neox_block), _attention_matmuls(2),
               _hf_builder(_neox_config)),
        # an LSTM between an embedding and a head, its hidden size matched to the llama's total params
        Family("lstm", False, _lstm_hidden, _lstm_params, _lstm_matmuls, _build_lstm, compiles=False),
    )
}  # fmt: skip
TRANSFORMER_FAMILIES = tuple(name for name, f in FAMILIES.items() if f.attention)  # HF transformers models


def family(name: str) -> Family:
    """The record of `name`; ConfigError listing the known families otherwise."""
    if name not in FAMILIES:
        raise ConfigError(f"model.family: unknown value {name!r}; allowed: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def shape_for_width(width: int, model: ModelConfig, vocab_size: int, seq_len: int) -> ModelShape:
    """The shape at one setting of the size dial: depth = model.depth, or without it
    max(1, round(width / aspect)); model.n_heads heads, or without it heads of head_dim (none
    without attention); the family's hidden-width rule."""
    fam = family(model.family)
    base = ModelShape(
        family=model.family,
        width=width,
        depth=model.depth or max(1, round(width / model.aspect)),
        n_heads=(model.n_heads or width // model.head_dim) if fam.attention else 0,
        ffn_hidden=0,
        vocab_size=vocab_size,
        seq_len=seq_len,
        tie_embeddings=model.tie_embeddings,
    )
    return replace(base, ffn_hidden=fam.hidden(base, model.ffn_mult))


def param_counts(shape: ModelShape) -> ParamCounts:
    """Exact parameter counts of the model `harness.models.build.build_model(shape)` builds."""
    embedding, nonembedding = family(shape.family).counts(shape)
    return ParamCounts(total=embedding + nonembedding, embedding=embedding, nonembedding=nonembedding)


def matmul_params(shape: ModelShape) -> int:
    """Weights each token is multiplied with in the forward pass: the family's block matmuls (q, k, v, o
    and the MLP; an LSTM's gates) plus the LM head (tied or not: it is still a matmul). Excludes the
    input embedding (a lookup), norms and biases."""
    return family(shape.family).matmuls(shape)


def lstm_hidden_for(total: int, width: int, depth: int, vocab_size: int) -> int:
    """The LSTM hidden size h whose model (`lstm_counts`) has the total closest to `total`.

    The total is quadratic in h, (8 depth - 4) h^2 + (vocab + 4 width + 8 depth) h + vocab width;
    the positive root, rounded down or up, whichever lands closer.
    """
    a, b, c = 8 * depth - 4, vocab_size + 4 * width + 8 * depth, vocab_size * width - total
    root = int((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a))
    candidates = [h for h in (root, root + 1) if h >= 1]
    return min(candidates, key=lambda h: abs(sum(lstm_counts(width, h, depth, vocab_size)) - total))


def lstm_counts(d: int, h: int, depth: int, v: int) -> tuple[int, int]:
    """(embedding, nonembedding) of torch nn.LSTM(d, h, depth) with both bias vectors per layer, a
    V x d embedding and an h -> V head."""
    first = 4 * h * (d + h) + 8 * h  # W_ih (4h x d), W_hh (4h x h), b_ih, b_hh
    rest = (depth - 1) * (8 * h * h + 8 * h)  # later layers read the h-wide state of the one below
    return v * d + v * h, first + rest
