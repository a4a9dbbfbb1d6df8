"""What fixes a model's architecture and size (`ModelShape`) and its parameter counts (`ParamCounts`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """Everything that fixes a model's architecture and size."""

    family: str  # a key of harness.models.families.FAMILIES
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
