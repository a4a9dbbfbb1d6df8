"""The cost model: FLOPs / (MFU(size) x peak) per run, summed over the plan (WSD main runs included)."""

from __future__ import annotations

import re
import time

import pytest

from harness.estimate import (
    ASSUMED_GPU_MFU,
    FixedCosts,
    Overheads,
    StepTimes,
    SweepWork,
    Throughput,
    cpu_throughput,
    estimate_seconds,
    eval_flops,
    gpu_throughput,
    run_flops,
    step_flops,
    sweep_overheads,
    throughput_from_runs,
)
from harness.flops import PEAK_FLOPS
from harness.plan import compute_summary, plan_runs
from tests.conftest import ROOT, compose_config

IMPORTED = time.monotonic()


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


def test_step_times_interpolate_in_log_log_flat_below_proportional_above() -> None:
    """A run's time from steps measured on other runs: between two, log-log in FLOPs per step; below the
    smallest its time (an overhead); above the largest its time grown with the FLOPs."""
    spec = _plan()[0]
    f, e = step_flops(spec), eval_flops(spec, 4096)
    evals = ((e, 0.5),)
    between = StepTimes("cpu", ((f / 10, 1e-3), (f * 10, 1e-1)), evals)
    assert between.run_seconds(spec, 4096) == pytest.approx(spec.steps * 1e-2 + spec.train.evals * 0.5)
    below = StepTimes("cpu", ((f * 10, 2e-3), (f * 100, 1e-2)), evals)
    assert below.run_seconds(spec, 0) == pytest.approx(spec.steps * 2e-3)  # no evaluation set: none
    above = StepTimes("cpu", ((f / 100, 1e-4), (f / 10, 1e-3)), ((e / 4, 0.1),))
    assert above.run_seconds(spec, 4096) == pytest.approx(spec.steps * 1e-2 + spec.train.evals * 0.4)
    assert "measured now on 2 of its runs" in between.describe([spec])
    for bad in ((), ((f, 1e-3), (f / 2, 1e-3)), ((f, 0.0),)):
        with pytest.raises(ValueError, match="steps: need ascending"):
            StepTimes("cpu", bad, evals)


def test_fixed_costs_count_once_per_sweep_per_process_start_and_per_run() -> None:
    costs = FixedCosts(pool=1, process=2, tracker=4, run=0.5, fit=8, resample=0.01, draw=0.1)
    work = SweepWork(processes=2, logging=True, resamples=100, draws=10)
    o = sweep_overheads(costs, work, already=3.0, slowdown=2.0)
    assert o == Overheads(already=3.0, start=2 * (1 + 2 + 4), run=1.0, after=2 * (8 + 1 + 1))
    alone = SweepWork(processes=1, logging=False, resamples=-1, draws=10)  # trains, no fit
    assert sweep_overheads(costs, alone, already=0.0, slowdown=1.0) == Overheads(0.0, 2.0, 0.5, 0.0)
    plan = _plan()
    flat = Throughput("test", 1e12, ((1.0, 0.5),), "fixed")
    wall, basis = estimate_seconds(plan, flat, runs_at_once=2, overheads=o)
    times = [flat.run_seconds(s, 0) + o.run for s in plan]
    assert wall == pytest.approx(3.0 + 14.0 + max(sum(times) / 2, max(times)) + 20.0)
    assert "s besides training (start 17 s, 1 s per run, fit and report 20 s)" in basis


def test_the_steps_are_timed_on_the_plans_own_runs() -> None:
    """The start screen times a few of the plan's runs with the real loop: smoke's 3 sizes share one
    batch, so 3 distinct steps, each timed, and an evaluation at the smallest and largest. (Speeds are
    not asserted: a shared machine.)"""
    from harness.console import measure_steps
    from harness.data import make_source
    from harness.device import resolve_device

    cfg = compose_config("sweep=smoke", "logger=off")
    source = make_source(cfg.data)
    plan = plan_runs(cfg, vocab_size=source.vocab_size, data_fingerprint="abc", precision="fp32")
    times = measure_steps(plan, source, resolve_device(cfg.train, 1), cfg.data.val_tokens)
    assert [f for f, _ in times.steps] == sorted({step_flops(s) for s in plan})
    assert all(t > 0 for _, t in times.steps) and len(times.evals) == 2
    small, large = (f(plan, key=step_flops) for f in (min, max))
    assert [f for f, _ in times.evals] == [eval_flops(small, 4096), eval_flops(large, 4096)]


def test_a_plan_too_large_to_time_is_estimated_from_the_mfu_table() -> None:
    """Timing a width-2048 run's steps on a cpu would take minutes: the assumed MFU table instead."""
    from harness.console import estimate
    from harness.data import make_source
    from harness.device import resolve_device

    cfg = compose_config("sweep=smoke", "logger=off", "sweep.widths=[2048]")
    source = make_source(cfg.data)
    plan = plan_runs(cfg, vocab_size=source.vocab_size, data_fingerprint="abc", precision="fp32")
    dev = resolve_device(cfg.train, 1)
    seconds, basis = estimate(cfg, plan, [], source, dev, runs_at_once=2, logging=False)
    assert "MFU assumed" in basis and "besides training" in basis and seconds > 0


def test_the_time_already_spent_is_this_process_age() -> None:
    from harness.console import process_age

    assert time.monotonic() - IMPORTED - 0.05 <= process_age() < 1e6
