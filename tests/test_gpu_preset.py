"""The gpu preset, planned and (its smallest run, cut to a few steps) trained on CPU: the ladder's rules
(issue 14: >= 8 budgets, >= 200 steps per run, size steps <= 1.5x, sizes near each budget's optimum) hold."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from harness.data import make_source
from harness.device import resolve_device
from harness.fit.rules import RULES
from harness.plan import compute_summary, plan_runs
from harness.tracking.wandb_run import NullLogger
from harness.train import train_run
from tests.conftest import compose_config

CPU = ("sweep=gpu", "train.device=cpu", "logger=off")


def _plan(*overrides: str):
    cfg = compose_config(*CPU, *overrides)
    return cfg, plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="abc", precision="fp32")


def test_gpu_ladder_follows_the_ladder_rules() -> None:
    cfg, plan = _plan()
    budgets = defaultdict(list)
    for run in plan:
        budgets[run.budget].append(run)
    assert len(budgets) >= 8 and min(budgets) == 1e15 and max(budgets) == 1e18
    assert min(r.steps for r in plan) >= 200
    sizes = sorted({r.params.total for r in plan})
    assert sizes[0] <= 1.1e6 and sizes[-1] >= 1e8  # ~1M to 100M+
    steps = [b / a for a, b in zip(sizes, sizes[1:], strict=False)]
    assert max(steps) <= 1.5, steps
    lo, hi = cfg.sweep.min_tokens_per_param, cfg.sweep.max_tokens_per_param
    for budget, runs in budgets.items():
        ratios = sorted(r.tokens / r.params.total for r in runs)
        assert lo <= ratios[0] and ratios[-1] <= hi
        assert len(runs) >= 5, budget  # a parabola per budget (Chinchilla's approach 2)
        # Chinchilla's optimum (~20 tokens/param) and the synthetic source's at cpu scale (~50) inside
        assert ratios[0] < 20 and ratios[-1] > 50, (budget, ratios)
        assert all(abs(r.flops - budget) <= 0.1 * budget for r in runs)


def test_gpu_ladder_through_wsd_branches_saves_compute() -> None:
    _, plain = _plan()
    _, branches = _plan("sweep.branches=true", "train.schedule=wsd")
    assert [(r.shape.width, r.budget) for r in branches] == [(r.shape.width, r.budget) for r in plain]
    summary = compute_summary(branches)
    assert summary["flops_separate"] == pytest.approx(sum(r.flops for r in plain))
    assert 0.25 < summary["saved_frac"] < 0.5


def test_gpu_presets_smallest_run_trains_on_cpu(tmp_path: Path) -> None:
    """The plan's first (smallest) run as the preset builds it (shape, heads of 16, 256-token windows,
    synthetic data, AdamW and its LR), cut to 3 steps of 8 sequences so it takes seconds on a CPU.
    compile stays off here: compile on CPU is the trainer's tests' concern (issue 17.2)."""
    cfg, plan = _plan("train.compile=false", "train.threads=1", "data.val_tokens=2048")
    first = min(plan, key=lambda r: (r.params.total, r.budget))
    assert first.shape.width == 144 and first.shape.n_heads == 9 and first.shape.seq_len == 256
    spec = replace(first, steps=3, schedule_steps=3, warmup_steps=1, batch_size=8, tokens=3 * 8 * 256)
    source = make_source(cfg.data)
    dev = resolve_device(cfg.train, threads=1)
    assert dev.type == "cpu"
    result = train_run(spec, source, tmp_path / "run", NullLogger(), dev)
    assert result["status"] == "done" and result["tokens"] == 3 * 8 * 256
    assert math.isfinite(result["val_loss"]) and result["val_loss"] < 1.2 * math.log(cfg.data.vocab_size)
    assert result["tokens_per_s"] > 0
    assert (tmp_path / "run" / "metrics.jsonl").exists()


def test_gpu_4h_trains_on_one_h100_in_4_hours_by_the_estimate_and_holds_out_its_top_2_budgets() -> None:
    from harness.estimate import estimate_seconds, gpu_throughput

    cfg, plan = _plan("sweep=gpu_4h")
    _, full = _plan()
    seconds, basis = estimate_seconds(plan, gpu_throughput("H100 SXM"), val_tokens=cfg.data.val_tokens)
    assert seconds <= 4 * 3600 and "MFU assumed" in basis
    budgets = sorted({r.budget for r in plan})
    assert budgets == sorted({r.budget for r in full})[:8]  # the gpu ladder's lower 8
    by_budget = {b: sum(r.budget == b for r in plan) for b in budgets}
    top2 = by_budget[budgets[-1]] + by_budget[budgets[-2]]
    top1 = by_budget[budgets[-1]]
    # the fit's rule holds out the fewest top budgets (at least 2) with that share of the runs: 2 here
    assert top2 >= RULES.holdout_frac * len(plan) > top1
    assert {(r.shape.width, r.budget) for r in plan} <= {(r.shape.width, r.budget) for r in full}


def test_a_gpu_preset_without_cuda_says_so_in_the_dry_run(tmp_path: Path, capsys) -> None:
    """No silent fallback: sweep=gpu on a machine without CUDA (this one) names the missing CUDA on the
    start screen, and the estimate is the cpu's (the plan would be refused beyond sweep.max_hours)."""
    from harness.sweep import run_sweep

    cfg = compose_config("sweep=gpu", "logger=off", "sweep.dry_run=true", f"sweep.dir={tmp_path}/gpu",
                         "data.val_tokens=2048")  # fmt: skip
    run_sweep(cfg)
    out = capsys.readouterr().out
    assert sum(row.lstrip().startswith("CUDA") for row in out.splitlines()) == 1
    words = " ".join(out.split())  # the line wraps
    assert "CUDA MISSING: torch " in words and "this preset is sized for a GPU and trains on the cpu" in words
    assert "(train.device=cuda makes a missing GPU an error)" in words
    assert "cpu fp32" in out.splitlines()[0] and "would be refused" in out
    assert not list(tmp_path.iterdir())  # a dry run writes nothing
    smoke = compose_config("sweep=smoke", "logger=off", "sweep.dry_run=true", f"sweep.dir={tmp_path}/smoke")
    run_sweep(smoke)
    assert "CUDA" not in capsys.readouterr().out  # a cpu preset on a cpu: nothing to say
