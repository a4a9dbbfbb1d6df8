"""The built HF models against shape.py's closed-form counts, seeding, the loss at init, and sdpa."""

from __future__ import annotations

import math

import pytest
import torch
from torch.overrides import TorchFunctionMode

from harness.config import FAMILIES, ModelConfig
from harness.model import build_model, count_params
from harness.shape import ModelShape, param_counts, shape_for_width

VOCAB, SEQ_LEN = 256, 32


def make_shape(family: str, width: int = 32, tie: bool = False) -> ModelShape:
    return shape_for_width(width, ModelConfig(family=family, tie_embeddings=tie), VOCAB, SEQ_LEN)


def batch(shape: ModelShape, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, shape.vocab_size, (2, shape.seq_len), generator=g, dtype=torch.int64)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("width", [32, 48, 80])
def test_counts_match_closed_form(family: str, tie: bool, width: int) -> None:
    shape = make_shape(family, width, tie)
    model = build_model(shape)
    assert count_params(model) == param_counts(shape)
    tied = model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert tied == tie


@pytest.mark.parametrize("family", FAMILIES)
def test_built_model_follows_shape(family: str) -> None:
    shape = make_shape(family, 48)
    model = build_model(shape)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (48, shape.depth, 3)
    assert cfg.vocab_size == VOCAB and cfg.max_position_embeddings == SEQ_LEN
    assert cfg.use_cache is False and model.training
    assert all(m.p == 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert getattr(cfg, "attention_dropout", 0.0) == 0.0


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_weights(family: str) -> None:
    shape = make_shape(family)
    a, b = build_model(shape, seed=7).state_dict(), build_model(shape, seed=7).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = build_model(shape, seed=8).state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_at_init_is_near_uniform(family: str) -> None:
    shape = make_shape(family)
    x = batch(shape)
    loss = build_model(shape, seed=0)(input_ids=x, labels=x).loss
    assert torch.isfinite(loss)
    assert abs(loss.item() - math.log(VOCAB)) < 0.5


class _RecordSdpa(TorchFunctionMode):
    """Counts calls of torch.nn.functional.scaled_dot_product_attention, however it was imported."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.nn.functional.scaled_dot_product_attention:
            self.calls += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_runs_through_sdpa(family: str) -> None:
    shape = make_shape(family)
    model = build_model(shape)
    assert model.config._attn_implementation == "sdpa"
    x = batch(shape)
    with _RecordSdpa() as rec:
        model(input_ids=x, labels=x)
    assert rec.calls == shape.depth  # one fused attention call per block, no eager fallback
