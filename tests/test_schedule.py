"""LR rules: per-size peak, warmup length, cosine and WSD shapes."""

from __future__ import annotations

import math

import pytest

from harness.config import TrainConfig
from harness.schedule import lr_at, peak_lr, warmup_steps


def test_peak_lr_inverse_width_above_reference_only() -> None:
    cfg = TrainConfig(lr=3e-3, lr_rule="inverse_width", lr_ref_width=64)
    assert peak_lr(128, cfg) == pytest.approx(1.5e-3)
    assert peak_lr(32, cfg) == pytest.approx(3e-3)
    assert peak_lr(128, TrainConfig(lr=3e-3, lr_rule="constant")) == 3e-3


def test_peak_lr_power_rule_is_flat_then_a_line_in_log_log() -> None:
    cfg = TrainConfig(lr=4e-3, lr_rule="power", lr_ref_width=32, lr_exponent=1.5)
    assert peak_lr(32, cfg) == pytest.approx(4e-3)
    assert peak_lr(128, cfg) == pytest.approx(5e-4)
    assert peak_lr(8, cfg) == pytest.approx(4e-3)  # not raised below the reference


def test_warmup_is_capped_by_params_and_run_share() -> None:
    cfg = TrainConfig(warmup_tokens_per_param=1.0, warmup_max_frac=0.1)
    assert warmup_steps(10_000, steps=1000, tokens_per_step=1000, cfg=cfg) == 10  # N tokens
    assert warmup_steps(10**9, steps=1000, tokens_per_step=1000, cfg=cfg) == 100  # 10% of the run


def test_cosine_warms_up_then_decays_to_floor() -> None:
    cfg = TrainConfig(final_lr_frac=0.1)
    lrs = [lr_at(s, steps=100, warmup=10, peak=1.0, cfg=cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[54] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 44 / 89)))


def test_wsd_is_flat_then_cools_down_linearly() -> None:
    cfg = TrainConfig(schedule="wsd", cooldown_frac=0.2, final_lr_frac=0.0)
    lrs = [lr_at(s, steps=100, warmup=10, peak=1.0, cfg=cfg) for s in range(100)]
    assert all(lr == 1.0 for lr in lrs[10:80])
    assert lrs[80] == pytest.approx(1 - 1 / 20) and lrs[-1] == pytest.approx(0.0)
