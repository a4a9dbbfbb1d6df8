"""Planning: grid and IsoFLOP designs, stable run ids, budget errors."""

from __future__ import annotations

import pytest

from harness.config import ConfigError
from harness.plan import check_config, plan_runs
from tests.conftest import compose_config


def _plan(*overrides: str, data_fingerprint: str = "abc"):
    cfg = compose_config("sweep=smoke", *overrides)
    return plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint=data_fingerprint, precision="fp32")


def test_grid_plans_every_width_and_budget_with_exact_tokens() -> None:
    runs = _plan()
    assert len(runs) == 9
    assert {r.shape.width for r in runs} == {16, 32, 48}
    for r in runs:
        assert r.tokens == r.steps * r.batch_size * r.shape.seq_len == r.budget
        assert r.flops == pytest.approx(r.flops_per_token * r.tokens)
    assert len({r.run_id for r in runs}) == 9


def test_run_ids_are_stable_and_change_with_numbers_only() -> None:
    base = {r.run_id for r in _plan()}
    assert base == {r.run_id for r in _plan()}
    assert base == {r.run_id for r in _plan("train.evals=7", "train.checkpoint_every=5")}
    assert base.isdisjoint({r.run_id for r in _plan("train.lr=1e-3")})
    assert base.isdisjoint({r.run_id for r in _plan(data_fingerprint="other-data")})


def test_isoflop_derives_tokens_from_compute() -> None:
    runs = _plan("sweep.design=isoflop", "sweep.flops=[1e10,4e10]")
    for r in runs:
        assert abs(r.flops - r.budget) <= r.flops_per_token * r.batch_size * r.shape.seq_len
    small = [r for r in runs if r.budget == 1e10]
    assert sorted(r.shape.width for r in small) == [16, 32, 48]
    assert small[0].tokens > small[-1].tokens  # larger models get fewer tokens at fixed compute


def test_isoflop_budget_too_small_for_smallest_model() -> None:
    with pytest.raises(ConfigError, match="too small for the smallest model"):
        _plan("sweep.design=isoflop", "sweep.flops=[1e3]")


def test_isoflop_leaves_out_sizes_that_cannot_spend_the_budget_in_whole_batches() -> None:
    runs = _plan("sweep.design=isoflop", "sweep.flops=[4e8,1e10]")
    for r in runs:
        assert abs(r.flops - r.budget) <= 0.1 * r.budget
    widths = {b: sorted(r.shape.width for r in runs if r.budget == b) for b in (4e8, 1e10)}
    assert widths[1e10] == [16, 32, 48]
    assert 16 in widths[4e8] and 48 not in widths[4e8]


def test_isoflop_window_keeps_only_sizes_near_the_budgets_optimum() -> None:
    everything = _plan("sweep.design=isoflop", "sweep.flops=[1e10,4e10]")
    ratios = sorted(r.tokens / r.params.total for r in everything)
    lo, hi = ratios[1], ratios[-2]  # a window that must cut the two extremes
    runs = _plan(
        "sweep.design=isoflop",
        "sweep.flops=[1e10,4e10]",
        f"sweep.min_tokens_per_param={lo}",
        f"sweep.max_tokens_per_param={hi}",
    )
    assert len(runs) == len(everything) - 2
    assert all(lo <= r.tokens / r.params.total <= hi for r in runs)


def test_isoflop_window_bounds_are_checked() -> None:
    cfg = compose_config("sweep.min_tokens_per_param=2", "sweep.max_tokens_per_param=1")
    with pytest.raises(ConfigError, match=r"^sweep.max_tokens_per_param: 1.0 is below"):
        check_config(cfg)
