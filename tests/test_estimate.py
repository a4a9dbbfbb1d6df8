"""The cost model: FLOPs / (MFU(size) x peak) per run, summed over the plan (WSD main runs included)."""

from __future__ import annotations

import re

import pytest

from harness.estimate import (
    ASSUMED_GPU_MFU,
    Throughput,
    cpu_throughput,
    estimate_seconds,
    gpu_throughput,
    run_flops,
    throughput_from_runs,
)
from harness.flops import PEAK_FLOPS
from harness.plan import compute_summary, plan_runs
from tests.conftest import ROOT, compose_config


def _plan(*overrides: str):
    cfg = compose_config("sweep=smoke", *overrides)
    return plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="abc", precision="fp32")


def test_fixed_mfu_gives_flops_over_mfu_times_peak() -> None:
    plan = _plan()
    flat = Throughput("test", 1e12, ((1.0, 0.25),), "fixed")
    seconds, basis = estimate_seconds(plan, flat)
    assert seconds == pytest.approx(sum(r.flops for r in plan) / (0.25 * 1e12))
    assert f"{len(plan)} runs" in basis and "test" in basis and "fixed" in basis


def test_mfu_is_log_linear_between_points_and_flat_outside() -> None:
    t = Throughput("test", 1e12, ((1e6, 0.1), (1e8, 0.3)), "two points")
    assert t.mfu_at(1e3) == 0.1 and t.mfu_at(1e6) == 0.1
    assert t.mfu_at(1e7) == pytest.approx(0.2)  # half way in log10(params)
    assert t.mfu_at(1e8) == pytest.approx(0.3) and t.mfu_at(1e12) == 0.3
    assert t.seconds(3e12, 1e8) == pytest.approx(10.0)


def test_sizes_take_their_own_mfu() -> None:
    plan = _plan()
    t = Throughput("test", 1e12, ((1e3, 0.1), (1e6, 0.4)), "two points")
    expected = sum(r.flops / (t.mfu_at(r.params.nonembedding) * 1e12) for r in plan)
    assert estimate_seconds(plan, t)[0] == pytest.approx(expected)
    small, large = (f(plan, key=lambda r: r.params.nonembedding) for f in (min, max))
    assert t.mfu_at(small.params.nonembedding) < t.mfu_at(large.params.nonembedding)


def test_wsd_branches_count_main_runs_and_cooldowns_once() -> None:
    plan = _plan("sweep.branches=true", "train.schedule=wsd")
    flat = Throughput("test", 1e12, ((1.0, 0.5),), "fixed")
    spent = compute_summary(plan)["flops_spent"]
    assert estimate_seconds(plan, flat)[0] == pytest.approx(spent / 0.5e12)
    assert spent < sum(r.flops for r in plan)  # the branches share their main run's steps


def test_evals_add_their_forward_passes() -> None:
    plan = _plan()
    flat = Throughput("test", 1e12, ((1.0, 1.0),), "fixed")
    base, _ = estimate_seconds(plan, flat)
    with_evals, _ = estimate_seconds(plan, flat, val_tokens=4096)
    evals = plan[0].train.evals
    assert with_evals - base == pytest.approx(sum(evals * 4096 * r.flops_per_token / 3 for r in plan) / 1e12)
    assert run_flops(plan[0], 4096) > plan[0].flops


def test_runs_at_once_divide_the_sum_but_not_the_longest_run() -> None:
    plan = _plan()
    flat = Throughput("test", 1e12, ((1.0, 1.0),), "fixed")
    one, _ = estimate_seconds(plan, flat)
    three, basis = estimate_seconds(plan, flat, runs_at_once=3)
    assert three == pytest.approx(max(one / 3, max(r.flops for r in plan) / 1e12))
    assert "3 runs at once" in basis
    lone = estimate_seconds(plan[:1], flat, runs_at_once=4)[0]
    assert lone == pytest.approx(plan[0].flops / 1e12)  # one run cannot be split across cores
    with pytest.raises(ValueError, match="runs_at_once"):
        estimate_seconds(plan, flat, runs_at_once=0)


def test_gpu_and_cpu_devices() -> None:
    h100 = gpu_throughput("NVIDIA H100 80GB HBM3")
    assert h100.peak_flops == PEAK_FLOPS["H100 SXM"] and h100.mfu == ASSUMED_GPU_MFU
    assert "assumed" in h100.basis
    assert "assumed" not in gpu_throughput("A100", mfu=((1e6, 0.1),)).basis
    with pytest.raises(ValueError, match="no peak known"):
        gpu_throughput("mystery accelerator")
    cpu = cpu_throughput(1e11)
    assert cpu.device == "cpu" and cpu.peak_flops == 1e11 and "measured" in cpu.basis


@pytest.mark.parametrize(
    "peak, mfu", [(0.0, ((1e6, 0.1),)), (1e12, ()), (1e12, ((1e6, 1.5),)), (1e12, ((1e8, 0.1), (1e6, 0.2)))]
)
def test_bad_throughput_is_refused(peak: float, mfu: tuple) -> None:
    with pytest.raises(ValueError, match="peak_flops|mfu"):
        Throughput("test", peak, mfu, "bad")


def test_throughput_from_finished_runs() -> None:
    rows = [
        {"status": "done", "params_nonembedding": 1000, "tokens_per_s": 100.0, "flops_per_token": 6000.0},
        {"status": "done", "params_nonembedding": 1000, "tokens_per_s": 300.0, "flops_per_token": 6000.0},
        {"status": "done", "params_nonembedding": 8000, "tokens_per_s": 50.0, "flops_per_token": 48000.0},
        {"status": "pending", "params_nonembedding": 64000, "tokens_per_s": None, "flops_per_token": 1.0},
        {"status": "diverged", "params_nonembedding": 64000, "tokens_per_s": 9.0, "flops_per_token": 1.0},
    ]
    t = throughput_from_runs(rows, "cpu", peak=1e7)
    assert t is not None and t.mfu == ((1000.0, 0.12), (8000.0, 0.24))  # medians: 200 x 6000 / 1e7, ...
    assert "3 finished runs" in t.basis
    assert throughput_from_runs(rows[3:], "cpu", peak=1e7) is None
    as_csv = [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]  # results.csv
    assert throughput_from_runs(as_csv, "cpu", peak=1e7) == t


def test_gpu_preset_estimate_is_the_one_in_the_docs() -> None:
    """docs/gpu.md states the gpu preset's hours on one H100 from this model; they must agree."""
    cfg = compose_config("sweep=gpu", "train.device=cpu")
    plan = plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="abc", precision="bf16")
    seconds, _ = estimate_seconds(plan, gpu_throughput("H100 SXM"), val_tokens=cfg.data.val_tokens)
    docs = (ROOT / "docs" / "gpu.md").read_text()
    stated = re.search(r"estimated wall time on one H100 SXM: \*\*([\d.]+) h\*\*", docs)
    assert stated is not None, "docs/gpu.md lost its estimate line"
    assert float(stated.group(1)) == pytest.approx(seconds / 3600, abs=0.05)
