"""harness.execute: how many runs share a device, tasks (WSD groups, largest first), and a sweep
trained by two processes giving the numbers one process gives, its table and fit written once."""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import harness.execute as execute
from harness.device import Device
from harness.execute import Capacity, plan_tasks, run_memory_bytes, runs_per_device
from harness.plan import plan_runs
from harness.sweep import run_sweep
from tests.conftest import assert_close, compose_config, run_module

GIB = 2**30
H100 = Capacity(memory_bytes=64 * GIB, process_bytes=GIB, fill_flops=2e12, max_runs=8)


def _specs(*overrides: str, precision: str = "fp32"):
    cfg = compose_config("sweep=smoke", *overrides)
    return plan_runs(cfg, vocab_size=256, data_fingerprint="test", precision=precision)


@pytest.mark.parametrize(
    ("memory", "flops_per_step", "expected"),
    [
        (GIB // 10, 1e9, 8),  # a tiny run: as many as the device holds processes (max_runs)
        (7 * GIB, 1e9, 8),  # 8 x (7 + 1) GiB = 64 GiB: still fits
        (15 * GIB, 1e9, 4),  # memory-bound: 4 x 16 GiB
        (GIB, 5e11, 4),  # size-bound: 4 such steps fill the device
        (GIB, 2e12, 1),  # a run that fills the device gets it alone
        (GIB, 1e14, 1),
        (100 * GIB, 1e9, 1),  # larger than the device: alone (it may not fit at all)
    ],
)
def test_runs_per_device_from_memory_and_size(memory: int, flops_per_step: float, expected: int) -> None:
    assert runs_per_device(memory, flops_per_step, H100) == expected


def test_on_cpu_the_cores_decide_unless_memory_runs_out() -> None:
    host = Capacity(memory_bytes=16 * GIB, process_bytes=GIB, fill_flops=math.inf, max_runs=2)
    assert runs_per_device(GIB // 100, 1e12, host) == 2
    assert runs_per_device(15 * GIB, 1e12, replace(host, max_runs=64)) == 1


def test_run_memory_counts_weights_optimizer_activations_and_logits() -> None:
    spec = _specs("sweep.widths=[64]", "sweep.tokens=[16384]")[0]
    tokens = spec.batch_size * spec.shape.seq_len  # 1024
    weights = 16 * spec.params.total
    activations = tokens * spec.shape.depth * 34 * 64 * 2
    assert run_memory_bytes(spec) == weights + activations + 12 * tokens * 256
    bf16 = _specs("sweep.widths=[64]", "sweep.tokens=[16384]", precision="bf16")[0]
    assert run_memory_bytes(bf16) == weights + activations // 2 + 12 * tokens * 256
    double = replace(spec, batch_size=2 * spec.batch_size)
    assert run_memory_bytes(double) - run_memory_bytes(spec) == activations + 12 * tokens * 256


def test_tasks_keep_a_main_run_with_its_branches_largest_first() -> None:
    specs = _specs("sweep.branches=true", "train.schedule=wsd", "sweep.widths=[16,32]")
    tasks = plan_tasks(list(specs))
    assert len(tasks) == 2 and [t.specs[0].shape.width for t in tasks] == [32, 16]
    for task in tasks:
        main, *branches = task.specs
        assert main.forks and all(b.parent == main for b in branches) and len(branches) == 3
        assert task.prefixes[0] == {16: "[1/8] ", 32: "[5/8] "}[main.shape.width]
    plain = plan_tasks(list(_specs()))
    assert [t.flops for t in plain] == sorted((t.flops for t in plain), reverse=True)
    assert sorted(t.prefixes[0] for t in plain) == sorted(f"[{i}/9] " for i in range(1, 10))


TINY = ("sweep=smoke", "logger=off", "sweep.widths=[16,32]", "sweep.tokens=[16384,32768,65536]")
TINY += ("fit.bootstrap=20", "train.precision=bf16")


@pytest.mark.slow
def test_two_processes_train_the_numbers_of_one_and_fit_once(tmp_path: Path) -> None:
    one = run_sweep(compose_config(*TINY, "sweep.workers=1", f"sweep.dir={tmp_path / 'one'}"))
    out = run_module(
        "harness.sweep", *TINY, "sweep.workers=2", "train.threads=1", "sweep.dir=two", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    two = tmp_path / "two"
    assert "training up to 2 runs at once on the cpu, 1 torch thread each" in out.stdout
    assert out.stdout.count("val_loss=") == 6 and out.stdout.count("\nVERDICT: ") == 1

    def losses(sweep_dir: Path) -> dict[str, float]:
        with open(sweep_dir / "results.csv", newline="") as f:
            return {r["run_id"]: float(r["val_loss"]) for r in csv.DictReader(f)}

    # one process had 2 torch threads, the two 1 each: equal to float rounding
    assert len(losses(two)) == 6
    assert_close(losses(two), losses(one), rel=1e-4)
    fits = [json.loads((d / "fit.json").read_text()) for d in (one, two)]
    assert_close(*(f["frontier"] for f in fits))
    for run in (two / "runs").iterdir():  # each run records how it was computed
        spec = json.loads((run / "spec.json").read_text())
        assert (spec["precision"], spec["compile"], spec["device"]) == ("bf16", False, "cpu")
    assert json.loads((two / "sweep.json").read_text())["precision"] == "bf16"


def test_on_a_gpu_small_runs_pack_and_a_large_one_trains_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cuda twin of the packing decision, with torch's cuda queries answering as one 80 GB H100."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=80 * GIB))
    monkeypatch.setattr(execute, "usable_cores", lambda: 16)
    shape = ("model.aspect=64", "model.head_dim=64", "data.seq_len=256", "train.batch_size=128")
    cfg = compose_config("sweep=smoke", "sweep.widths=[128,1024]", "sweep.tokens=[33554432]", *shape)
    tasks = plan_tasks(list(plan_runs(cfg, vocab_size=256, data_fingerprint="test", precision="bf16")))
    h100 = Device("cuda", "bf16", False, 989.4e12)
    by_width = lambda slots: {t.specs[0].shape.width: n for t, n in zip(tasks, slots, strict=True)}  # noqa: E731
    assert by_width(execute.device_slots(cfg, tasks, h100, 0)[0]) == {128: 8, 1024: 1}
    capped = replace(cfg, sweep=replace(cfg.sweep, workers=3))  # sweep.workers caps the runs per GPU
    assert by_width(execute.device_slots(capped, tasks, h100, 0)[0]) == {128: 3, 1024: 1}


def test_workers_get_as_many_blas_threads_as_torch_threads_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in execute.BLAS_THREADS:  # restored after the test
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice stays
    execute.limit_blas_threads(1)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["OMP_NUM_THREADS"] == "3"
