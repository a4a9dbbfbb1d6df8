"""A model shape -> a randomly initialised causal LM, and its exact parameter counts read off the module.

Transformers are HF `transformers` models. Nothing is fetched from the hub: each family's config
class is filled from the shape (`harness.models.families`) and the model is built from it. Every
family uses torch's scaled_dot_product_attention ("sdpa"), no dropout and no KV cache (training
only). `count_params` reads the counts off the built module; `tests/test_model.py` checks that they
equal the closed forms of `harness.models.param_counts`.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForCausalLM

from harness.models.families import family
from harness.models.shape import ModelShape, ParamCounts

ATTN_IMPLEMENTATION = "sdpa"


def build_hf(config: Any) -> torch.nn.Module:
    """An HF causal LM from its config, with sdpa attention."""
    model = AutoModelForCausalLM.from_config(config, attn_implementation=ATTN_IMPLEMENTATION)
    model.loss_type = "ForCausalLM"  # gpt2's class name maps to no loss: the same default, minus a warning
    return model


def build_model(shape: ModelShape, *, seed: int | None = None) -> torch.nn.Module:
    """A freshly initialised causal LM of `shape` (fp32, train mode).

    With `seed`, torch's global RNG is seeded first, so equal seeds give identical weights.
    """
    if seed is not None:
        torch.manual_seed(seed)
    return family(shape.family).build(shape).train()


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
