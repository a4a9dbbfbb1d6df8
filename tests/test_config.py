"""Config composition and one-line validation of bad input."""

from __future__ import annotations

import pytest

from harness.config import ConfigError, check_overrides, validate
from tests.conftest import CONFIG_DIR, compose_config


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu", "isoflop_cpu"])
def test_presets_compose_and_validate(preset: str) -> None:
    cfg = compose_config(f"sweep={preset}")
    validate(cfg)
    assert cfg.sweep.name == preset
    assert cfg.sweep.dir == f"runs/{preset}"


def test_cpu_preset_spans_the_required_ladder() -> None:
    from harness.shape import param_counts, shape_for_width

    cfg = compose_config("sweep=cpu")
    counts = [
        param_counts(shape_for_width(w, cfg.model, cfg.data.vocab_size, cfg.data.seq_len)).nonembedding
        for w in cfg.sweep.widths
    ]
    assert len(counts) >= 5 and max(counts) / min(counts) >= 30
    assert len(cfg.sweep.tokens) >= 3


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["sweep.tokens=[-5]"], "sweep.tokens[0]"),
        (["sweep.tokens=[0,100000]"], "sweep.tokens[0]"),
        (["sweep.tokens=[10]"], "smaller than one batch"),
        (["sweep.widths=[33]"], "sweep.widths[0]"),
        (["sweep.widths=[]"], "sweep.widths"),
        (["sweep.widths=[32,32]"], "duplicate"),
        (["model.family=rnn"], "model.family"),
        (["train.lr=-1"], "train.lr"),
        (["data.source=nope"], "data.source"),
        (["sweep.design=isoflop"], "sweep.flops"),
        (["sweep.design=paired", "sweep.tokens=[16384]"], "sweep.tokens: design=paired needs one budget"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_field(overrides: list[str], field: str) -> None:
    cfg = compose_config("sweep=smoke", *overrides)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert field in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.widht=64", "model.widht: unknown config key"),
        ("train.lr=abc", "train.lr"),
        ("sweep.widths=[a,b]", "sweep.widths"),
        ("model=transformerxl", "model: unknown option 'transformerxl'; allowed: gpt2, llama, lstm, neox"),
        ("nosuchgroup.x=1", "nosuchgroup.x: unknown config key"),
    ],
)
def test_bad_overrides_fail_before_compose(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_overrides([override], CONFIG_DIR)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_good_overrides_pass() -> None:
    check_overrides(
        ["sweep=smoke", "train.lr=1e-3", "sweep.widths=[16,32]", "-m", "hydra.verbose=true"], CONFIG_DIR
    )
