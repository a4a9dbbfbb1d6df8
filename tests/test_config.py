"""Config composition and one-line validation of bad input."""

from __future__ import annotations

import pytest

from harness.config import ConfigError, check_overrides, validate
from tests.conftest import CONFIG_DIR, compose_config


@pytest.mark.parametrize("preset", ["smoke", "cpu", "cpu_grid", "gpu"])
def test_presets_compose_and_validate(preset: str) -> None:
    cfg = compose_config(f"sweep={preset}")
    validate(cfg)
    assert cfg.sweep.name == preset
    assert cfg.sweep.dir == f"runs/{preset}"


def test_cpu_preset_spans_the_required_ladder() -> None:
    """>= 5 sizes over >= 30x in non-embedding parameters, each trained at >= 3 budgets."""
    from harness.plan import plan_runs

    cfg = compose_config("sweep=cpu")
    runs = plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="x", precision="fp32")
    sizes = {r.params.nonembedding for r in runs}
    assert len(sizes) >= 5 and max(sizes) / min(sizes) >= 30
    for n in sizes:
        assert len({r.budget for r in runs if r.params.nonembedding == n}) >= 3


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
