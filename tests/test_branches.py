"""WSD cooldown branches (sweep.branches): the branch plan, order and shards, compute saved, config
errors, fork states, a branch equal to a WSD run trained directly, resume, and the CLI end to end."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch.nn.functional as F

import harness.train as train
from harness import store
from harness.config import ConfigError
from harness.data import make_source
from harness.device import resolve_device
from harness.plan import check_config, compute_summary, plan_runs, shard, training_order
from harness.schedule import warmup_steps
from harness.tracking.wandb_run import NullLogger
from harness.train import train_run
from tests.conftest import Crash, compose_config, crash_at, run_module

BRANCHES = ("sweep=smoke", "sweep.branches=true", "train.schedule=wsd")
# smoke budgets are 16, 32 and 64 steps of 1024 tokens; a 20% cooldown starts 3, 6 and 13 steps before the end
FORK = {16: 13, 32: 26, 64: 51}


def _plan(*overrides: str, branches: bool = True):
    cfg = compose_config(*(BRANCHES if branches else ("sweep=smoke",)), *overrides)
    check_config(cfg)
    return plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="abc", precision="fp32")


def test_each_budget_is_a_branch_forked_where_its_cooldown_starts() -> None:
    branches = _plan()
    assert len(branches) == 9
    for b in branches:
        assert b.tokens == b.budget == b.steps * 1024 and b.schedule_steps == b.steps
        assert b.fork_step == FORK[b.steps]
        assert b.flops == pytest.approx(b.flops_per_token * b.tokens)  # recorded: the full D
        assert b.flops_spent == pytest.approx(b.flops_per_token * (b.steps - b.fork_step) * 1024)
    mains = {b.parent.run_id: b.parent for b in branches}
    assert len(mains) == 3
    for main in mains.values():
        mine = [b for b in branches if b.parent is main]
        assert {b.shape.width for b in mine} == {main.shape.width}
        # the stable phase of the longest budget's WSD run, saving its state at every fork
        assert (main.steps, main.schedule_steps, main.forks) == (51, 64, (13, 26, 51))
        shared = warmup_steps(main.params.total, 16, 1024, main.train)  # the shortest budget's warmup
        assert main.warmup_steps == shared and {b.warmup_steps for b in mine} == {shared}
        assert main.name.endswith("-main") and main.to_dict()["parent"] is None
        assert mine[0].to_dict()["parent"] == main.run_id
    ids = [s.run_id for s in training_order(branches)]
    assert len(set(ids)) == 12
    assert set(ids).isdisjoint(s.run_id for s in _plan("train.schedule=wsd", branches=False))


def test_branch_ids_hash_their_main_run_and_fork() -> None:
    base = _plan("sweep.widths=[16]")
    assert [b.run_id for b in base] == [b.run_id for b in _plan("sweep.widths=[16]")]
    # A longer main run changes every branch, even the 16-step one whose own numbers stay the same.
    longer = _plan("sweep.widths=[16]", "sweep.tokens=[16384,32768,131072]")
    assert (longer[0].steps, longer[0].fork_step) == (base[0].steps, base[0].fork_step)
    assert {b.run_id for b in base}.isdisjoint(b.run_id for b in longer)


def test_training_order_puts_each_main_run_first_and_shards_keep_it_with_its_branches() -> None:
    branches = _plan()
    order = training_order(branches)
    assert [s.shape.width for s in order] == [16] * 4 + [32] * 4 + [48] * 4
    assert all(order[i].forks and order[i + 1].parent is order[i] for i in (0, 4, 8))
    shards = [shard(branches, i, 2) for i in range(2)]
    assert [sorted({s.shape.width for s in part}) for part in shards] == [[16, 48], [32]]
    assert sorted(s.run_id for part in shards for s in part) == sorted(s.run_id for s in branches)
    grid = _plan(branches=False)  # without branches: every run is its own group, dealt round-robin
    assert shard(grid, 1, 2) == [s for i, s in enumerate(grid) if i % 2 == 1]


def test_compute_summary_states_the_saving() -> None:
    branches = _plan()
    summary = compute_summary(branches)
    assert summary["flops_separate"] == pytest.approx(sum(b.flops for b in branches))
    # per size: a 51-step main run and cooldowns of 3, 6 and 13 steps, against 16 + 32 + 64 steps
    per_step = sum({b.shape.width: b.flops_per_token * 1024 for b in branches}.values())
    assert summary["flops_spent"] == pytest.approx(per_step * (51 + 3 + 6 + 13))
    assert summary["saved_frac"] == pytest.approx(1 - 73 / 112)
    assert compute_summary(_plan(branches=False))["saved_frac"] == 0


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.schedule=cosine"], "sweep.branches: cooldown branches need train.schedule=wsd"),
        (["train.cooldown_frac=0"], "train.cooldown_frac: sweep.branches needs a cooldown in (0, 1)"),
        (["train.cooldown_frac=0.95"], "train.cooldown_frac: a 0.95 cooldown of the 16-step budget"),
    ],
)
def test_invalid_combinations_are_one_line_config_errors(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)) as err:
        _plan(*overrides)
    assert "\n" not in str(err.value)


def test_fork_states_are_deleted_once_every_branch_from_them_has_finished(tmp_path: Path) -> None:
    branches = _plan("sweep.widths=[16]", "sweep.tokens=[16384,32768,33792]")  # 33 steps: fork 26 too
    main = branches[0].parent
    assert main.forks == (13, 26)
    main_dir = store.run_dir(tmp_path, main.dirname)
    main_dir.mkdir(parents=True)
    for step in main.forks:
        store.fork_path(main_dir, step).write_bytes(b"state")

    def finish(branch) -> None:
        store.write_json(store.run_dir(tmp_path, branch.dirname) / "result.json", {"status": "done"})

    finish(branches[1])  # one of the two branches forking at 26
    store.release_forks(tmp_path, branches)
    assert sorted(p.name for p in main_dir.iterdir()) == ["fork-13.pt", "fork-26.pt"]
    finish(branches[0])
    finish(branches[2])
    store.release_forks(tmp_path, branches)
    assert list(main_dir.iterdir()) == []


def _train_setup(*overrides: str):
    cfg = compose_config(*BRANCHES, "sweep.widths=[16]", "train.device=cpu", *overrides)
    source = make_source(cfg.data)
    branches = plan_runs(
        cfg, vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision="fp32"
    )
    return branches, source, resolve_device(cfg.train, 1)


def test_branches_equal_wsd_runs_trained_directly_after_a_killed_main_run_resumes(tmp_path: Path) -> None:
    branches, source, dev = _train_setup("sweep.tokens=[16384,32768]")
    main = branches[0].parent
    assert main.forks == (13, 26)
    main_dir = store.run_dir(tmp_path, main.dirname)

    with pytest.raises(Crash), crash_at(source, 20):
        train_run(main, source, main_dir, NullLogger(), dev)
    assert [p.name for p in main_dir.glob("*.pt")] == ["fork-13.pt"]  # no checkpoint_every: the fork state
    done = train_run(main, source, main_dir, NullLogger(), dev)  # resumes from step 13
    assert done["status"] == "done" and done["steps"] == 26
    assert sorted(p.name for p in main_dir.glob("*.pt")) == ["fork-13.pt", "fork-26.pt"]
    main_steps = [r["step"] for r in store.read_metrics(main_dir)]
    assert main_steps == sorted(set(main_steps))  # no eval row twice

    for branch in branches:
        branch_dir = store.run_dir(tmp_path, branch.dirname)
        result = train_run(branch, source, branch_dir, NullLogger(), dev)
        # the same run trained in one go: warmup, the peak LR to the fork, then the cooldown
        direct = replace(branch, run_id="direct", parent=None, fork_step=0)
        expected = train_run(direct, source, tmp_path / f"direct-{branch.steps}", NullLogger(), dev)
        assert result["status"] == "done" and result["tokens"] == branch.budget
        assert result["val_loss"] == pytest.approx(expected["val_loss"], abs=1e-6)
        rows = store.read_metrics(branch_dir)
        assert rows[: len(rows) - 1] == store.read_metrics(main_dir, max_step=branch.fork_step)
        assert rows[-1]["step"] == branch.steps and rows[-1]["val/loss"] == result["val_loss"]


def test_a_branch_past_its_main_runs_divergence_diverges_there_without_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (branch,), source, dev = _train_setup("sweep.tokens=[16384]")
    main_dir = store.run_dir(tmp_path, branch.parent.dirname)
    branch_dir = store.run_dir(tmp_path, branch.dirname)
    with pytest.raises(RuntimeError, match="train the main run first"):
        train_run(branch, source, branch_dir, NullLogger(), dev)

    calls = {"n": 0}

    def poisoned(logits, target, **kw):
        calls["n"] += 1
        loss = F.cross_entropy(logits, target, **kw)
        return loss * float("nan") if calls["n"] == 5 and logits.requires_grad else loss

    monkeypatch.setattr(train, "F", SimpleNamespace(cross_entropy=poisoned))
    main = train_run(branch.parent, source, main_dir, NullLogger(), dev)
    assert (main["status"], main["diverged_step"]) == ("diverged", 5)
    store.write_json(main_dir / "result.json", main)
    calls_before = calls["n"]
    result = train_run(branch, source, branch_dir, NullLogger(), dev)
    assert (result["status"], result["diverged_step"], result["val_loss"]) == ("diverged", 5, None)
    assert calls["n"] == calls_before  # the branch trained nothing


def test_bad_combination_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    out = run_module("harness.sweep", "sweep=smoke", "sweep.branches=true", cwd=tmp_path)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    expected = "sweep.branches: cooldown branches need train.schedule=wsd (warmup, stable, decay), got cosine"
    assert lines == [f"config error: {expected}"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_branch_sweep_writes_one_row_per_budget_and_a_rerun_trains_nothing(tmp_path: Path) -> None:
    args = (*BRANCHES, "logger=off", "sweep.widths=[16,32]", "sweep.tokens=[16384,32768]")
    out = run_module("harness.sweep", *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    sweep_dir = tmp_path / "runs" / "smoke"
    with open(sweep_dir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(store.RESULT_COLUMNS)
    assert sorted((int(r["width"]), int(r["tokens"])) for r in rows) == [
        (16, 16384), (16, 32768), (32, 16384), (32, 32768),
    ]  # fmt: skip
    assert {r["status"] for r in rows} == {"done"} and all(float(r["val_loss"]) > 0 for r in rows)
    compute = json.loads((sweep_dir / "sweep.json").read_text())["compute"]
    assert compute["saved_frac"] == pytest.approx(1 - (26 + 3 + 6) / (16 + 32))
    assert compute["flops_separate"] == pytest.approx(sum(float(r["flops"]) for r in rows))
    assert not list(sweep_dir.glob("runs/*/*.pt"))  # fork states and checkpoints are gone
    assert out.stdout.count("-main ") == 2 and out.stdout.count("val_loss=") == 6

    again = run_module("harness.sweep", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "to train   nothing (4 of 4 finished earlier)" in again.stdout and "val_loss=" not in again.stdout
    with open(sweep_dir / "results.csv", newline="") as f:
        assert list(csv.DictReader(f)) == rows


def test_compare_designs_script_states_compute_saved_and_fit_differences(tmp_path: Path) -> None:
    fits = {
        "cosine": {"frontier": {"alpha": 0.2, "E": 1.0, "C0": 1e9}, "parametric": None},
        "wsd": {"frontier": {"alpha": 0.25, "E": 0.9, "C0": 1e9}, "parametric": None},
    }
    for name, (spent, losses) in {"cosine": (100.0, [2.0, 3.0]), "wsd": (66.0, [2.2, 3.0])}.items():
        rows = [
            {"run_id": f"r{i}", "status": "done", "width": 16, "tokens": 1024 * (i + 1), "val_loss": loss}
            for i, loss in enumerate(losses)
        ]
        store.write_results_table(tmp_path / name, rows)
        store.write_json(tmp_path / name / "sweep.json", {"compute": {"flops_spent": spent}})
        store.write_json(tmp_path / name / "fit.json", fits[name])
    script = Path(__file__).resolve().parent.parent / "scripts" / "compare_designs.py"
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cosine"), str(tmp_path / "wsd")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "compute first_flops=100 second_flops=66 saved=34.0%"
    assert out[1] == "loss pairs=2 mean_rel_diff=+0.0500 mean_abs_rel_diff=0.0500 max_abs_rel_diff=0.1000"
    assert "frontier param=alpha first=0.2 second=0.25 rel_diff=+0.250" in out
    assert "frontier param=E first=1 second=0.9 rel_diff=-0.100" in out
    assert out[-1] == "parametric missing_in=first"
