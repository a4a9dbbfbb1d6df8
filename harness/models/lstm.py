"""An LSTM language model: torch nn.LSTM between an embedding and an LM head, called like the HF models."""

from __future__ import annotations

import torch
from transformers.modeling_outputs import CausalLMOutput

from harness.models.shape import ModelShape


class LSTMLanguageModel(torch.nn.Module):
    """Token embedding (V x width) -> nn.LSTM (depth layers of hidden size ffn_hidden) -> linear head.

    torch's default initialisation, no dropout. `model(input_ids=x).logits` as for the HF models.
    """

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(shape.vocab_size, shape.width)
        self.lstm = torch.nn.LSTM(shape.width, shape.ffn_hidden, num_layers=shape.depth, batch_first=True)
        self.lm_head = torch.nn.Linear(shape.ffn_hidden, shape.vocab_size, bias=False)

    def forward(self, input_ids: torch.Tensor) -> CausalLMOutput:
        hidden, _ = self.lstm(self.embed(input_ids))
        return CausalLMOutput(logits=self.lm_head(hidden))

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.embed

    def get_output_embeddings(self) -> torch.nn.Linear:
        return self.lm_head
