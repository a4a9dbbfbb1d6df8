"""A model shape -> a randomly initialised causal LM, and its exact parameter counts.

Transformers are HF `transformers` models. Nothing is fetched from the hub: each family's config
class is filled from the shape and the model is built from it. Every family uses torch's
scaled_dot_product_attention ("sdpa"), no dropout and no KV cache (training only). The lstm family is
a torch nn.LSTM between an embedding and an LM head, called and answering like the HF models.
`count_params` reads the counts off the built module; `tests/test_model.py` checks that they equal
the closed forms of `harness.shape.param_counts`.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, LlamaConfig, PretrainedConfig
from transformers.modeling_outputs import CausalLMOutput

from harness.shape import ModelShape, ParamCounts

ATTN_IMPLEMENTATION = "sdpa"


def model_config(shape: ModelShape) -> PretrainedConfig:
    """The HF config of `shape`'s family. Special token ids are None: our tokenizers define their own,
    and the families' defaults (e.g. gpt2's 50256) lie outside a small vocabulary."""
    d = shape.width
    common = dict(vocab_size=shape.vocab_size, tie_word_embeddings=shape.tie_embeddings, use_cache=False,
                  bos_token_id=None, eos_token_id=None, pad_token_id=None)  # fmt: skip
    if shape.family == "llama":  # SwiGLU MLP, RMSNorm, rotary, no biases, multi-head (no GQA)
        return LlamaConfig(
            hidden_size=d, num_hidden_layers=shape.depth, num_attention_heads=shape.n_heads,
            num_key_value_heads=shape.n_heads, intermediate_size=shape.ffn_hidden,
            max_position_embeddings=shape.seq_len, attention_bias=False, mlp_bias=False,
            attention_dropout=0.0, **common,
        )  # fmt: skip
    if shape.family == "gpt2":  # GELU MLP, LayerNorm, learned positions, biases everywhere
        # exact GELU (as nanoGPT and neox) rather than GPT-2's tanh approximation ("gelu_new"), which
        # transformers computes in 6 elementwise ops: 20% of a width-128 training step on cpu
        return GPT2Config(
            n_embd=d, n_layer=shape.depth, n_head=shape.n_heads, n_inner=shape.ffn_hidden,
            activation_function="gelu",
            n_positions=shape.seq_len, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            summary_first_dropout=0.0, **common,
        )  # fmt: skip
    if shape.family == "neox":  # GELU MLP, LayerNorm, parallel residual, partial rotary (defaults)
        return GPTNeoXConfig(
            hidden_size=d, num_hidden_layers=shape.depth, num_attention_heads=shape.n_heads,
            intermediate_size=shape.ffn_hidden, max_position_embeddings=shape.seq_len,
            attention_dropout=0.0, hidden_dropout=0.0, **common,
        )  # fmt: skip
    raise ValueError(f"model.family: unknown family {shape.family!r}; allowed: llama, gpt2, neox")


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


def build_model(shape: ModelShape, *, seed: int | None = None) -> torch.nn.Module:
    """A freshly initialised causal LM of `shape` (fp32, train mode, sdpa attention).

    With `seed`, torch's global RNG is seeded first, so equal seeds give identical weights.
    """
    if seed is not None:
        torch.manual_seed(seed)
    if shape.family == "lstm":
        return LSTMLanguageModel(shape).train()
    model = AutoModelForCausalLM.from_config(model_config(shape), attn_implementation=ATTN_IMPLEMENTATION)
    model.loss_type = "ForCausalLM"  # gpt2's class name maps to no loss: the same default, minus a warning
    return model.train()


def count_params(model: torch.nn.Module) -> ParamCounts:
    """Exact parameter counts of a built model, in scalars, each distinct tensor once.

    total: every parameter (a tied input/output embedding once). embedding: the input token table,
    the learned position table (gpt2's `wpe`; llama and neox use rotary, which has no parameters),
    and the output head when it is not tied to the input table. nonembedding = total - embedding.
    """
    tables = [model.get_input_embeddings().weight, model.get_output_embeddings().weight]
    positions = getattr(getattr(model, "base_model", model), "wpe", None)
    if positions is not None:
        tables.append(positions.weight)
    total = sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once
    embedding = sum(p.numel() for p in {id(p): p for p in tables}.values())
    return ParamCounts(total=total, embedding=embedding, nonembedding=total - embedding)
