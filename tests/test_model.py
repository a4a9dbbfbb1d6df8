"""The built models against shape.py's closed-form counts, seeding, the loss at init, sdpa; the LSTM."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch.overrides import TorchFunctionMode

from harness.config import ConfigError, ModelConfig
from harness.models import ModelShape, param_counts, shape_for_width
from harness.models.build import build_model, count_params
from harness.models.families import TRANSFORMER_FAMILIES
from harness.plan import check_config
from tests.conftest import compose_config

VOCAB, SEQ_LEN = 256, 32


def make_shape(family: str, width: int = 32, tie: bool = False) -> ModelShape:
    rule = ModelConfig(family=family, tie_embeddings=tie, depth=0, n_heads=0)  # the shape rule
    return shape_for_width(width, rule, VOCAB, SEQ_LEN)


def batch(shape: ModelShape, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, shape.vocab_size, (2, shape.seq_len), generator=g, dtype=torch.int64)


@pytest.mark.parametrize("family", TRANSFORMER_FAMILIES)
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("width", [32, 48, 80])
def test_counts_match_closed_form(family: str, tie: bool, width: int) -> None:
    shape = make_shape(family, width, tie)
    model = build_model(shape)
    assert count_params(model) == param_counts(shape)
    tied = model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert tied == tie


@pytest.mark.parametrize("family", TRANSFORMER_FAMILIES)
def test_built_model_follows_shape(family: str) -> None:
    shape = make_shape(family, 48)
    model = build_model(shape)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (48, shape.depth, 3)
    assert cfg.vocab_size == VOCAB and cfg.max_position_embeddings == SEQ_LEN
    assert cfg.use_cache is False and model.training
    assert all(m.p == 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert getattr(cfg, "attention_dropout", 0.0) == 0.0


@pytest.mark.parametrize(("family", "hidden"), [("llama", 256), ("gpt2", 384), ("neox", 384)])
def test_ffn_mult_sets_the_mlp_width(family: str, hidden: int) -> None:
    """model.ffn_mult=8 at width 48: llama's gated MLP 2/3 of 8 x 48, rounded up to 8; plain MLPs 8 x 48."""
    shape = shape_for_width(48, ModelConfig(family=family, ffn_mult=8.0), VOCAB, SEQ_LEN)
    assert shape.ffn_hidden == hidden  # and the built module has exactly the counted parameters:
    assert count_params(build_model(shape)) == param_counts(shape)


@pytest.mark.parametrize("family", TRANSFORMER_FAMILIES)
def test_same_seed_same_weights(family: str) -> None:
    shape = make_shape(family)
    a, b = build_model(shape, seed=7).state_dict(), build_model(shape, seed=7).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = build_model(shape, seed=8).state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("family", TRANSFORMER_FAMILIES)
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


@pytest.mark.parametrize("family", TRANSFORMER_FAMILIES)
def test_attention_runs_through_sdpa(family: str) -> None:
    shape = make_shape(family)
    model = build_model(shape)
    assert model.config._attn_implementation == "sdpa"
    x = batch(shape)
    with _RecordSdpa() as rec:
        model(input_ids=x, labels=x)
    assert rec.calls == shape.depth  # one fused attention call per block, no eager fallback


@pytest.mark.parametrize("width", [16, 32, 48, 96])
def test_lstm_counts_match_built_module(width: int) -> None:
    shape = make_shape("lstm", width)
    model = build_model(shape)
    assert isinstance(model.lstm, torch.nn.LSTM) and model.lstm.num_layers == shape.depth
    assert count_params(model) == param_counts(shape)
    assert param_counts(shape).embedding == VOCAB * (width + shape.ffn_hidden)


@pytest.mark.parametrize("width", [32, 48, 64, 96, 128])
def test_lstm_total_matches_llama_of_same_width(width: int) -> None:
    """The cpu ladder's widths at the default synthetic vocabulary: within 1% (measured <= 0.9%)."""
    lstm = shape_for_width(width, ModelConfig(family="lstm"), 32, 64)
    llama = shape_for_width(width, ModelConfig(family="llama"), 32, 64)
    assert lstm.depth == llama.depth and lstm.n_heads == 0
    assert param_counts(lstm).total == pytest.approx(param_counts(llama).total, rel=0.01)
    # h +- 1 lands farther away: the rule picks the closest hidden size
    off = [param_counts(replace(lstm, ffn_hidden=lstm.ffn_hidden + k)).total for k in (-1, 0, 1)]
    target = param_counts(llama).total
    assert min(off, key=lambda n: abs(n - target)) == off[1]


def test_lstm_forward_shape_seed_and_loss_at_init() -> None:
    shape = make_shape("lstm", 48)
    x = batch(shape)
    logits = build_model(shape, seed=3)(input_ids=x).logits
    assert logits.shape == (2, SEQ_LEN, VOCAB)
    assert torch.equal(logits, build_model(shape, seed=3)(input_ids=x).logits)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x.flatten())
    assert abs(loss.item() - math.log(VOCAB)) < 0.5
    # causal: changing a later token leaves earlier logits alone
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % VOCAB
    assert torch.equal(build_model(shape, seed=3)(input_ids=y).logits[:, :-1], logits[:, :-1])


def test_lstm_rejects_tied_embeddings() -> None:
    cfg = compose_config("model=lstm", "model.tie_embeddings=true")
    with pytest.raises(ConfigError, match=r"^model.tie_embeddings: .*must be false$"):
        check_config(cfg)
