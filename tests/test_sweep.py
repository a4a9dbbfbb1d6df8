"""End to end through the real CLI: the smoke sweep shows its plan, trains, fits, logs to W&B offline,
says where everything went, and a rerun trains nothing; bad input stops it with one line before
anything is written."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.tracking.offline import offline_run_dirs, read_offline_run
from tests.conftest import ROOT, run_module


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_module("harness.sweep", *args, cwd=cwd)


@pytest.mark.slow
def test_smoke_sweep_end_to_end_then_rerun_trains_nothing(tmp_path: Path) -> None:
    out = sweep("sweep=smoke", "train.threads=1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    sweep_dir = tmp_path / "runs" / "smoke"
    first_line = re.search(r"\n\d\d:\d\d:\d\d ", out.stdout)  # the first timestamped line (any hour)
    assert first_line, out.stdout
    start = out.stdout[: first_line.start()]  # the start screen
    for line in (
        "sweep smoke: llama on synthetic data, cpu fp32",
        "  runs       9: 3 sizes x 3 grid budgets",
        "  budgets    16.4k, 32.8k, 65.5k tokens",
        "  to train   9 runs\n",
        "  estimate   about ",
        "  results    runs/smoke/ (results.csv, fit.json, report.md, plots/)",
        "  W&B        offline: ",  # no API key here (CI also sets WANDB_MODE=offline)
    ):
        assert line in start, line
    rows = read_rows(sweep_dir / "results.csv")
    assert len(rows) == 9 and {r["status"] for r in rows} == {"done"}
    for r in rows:
        assert float(r["val_loss"]) > 0 and int(r["params_total"]) > int(r["params_nonembedding"]) > 0
        assert float(r["flops"]) > float(r["flops_6n"]) > 0
    fit = json.loads((sweep_dir / "fit.json").read_text())
    assert {"frontier", "verdict", "conventions"} <= set(fit)
    assert (sweep_dir / "report.md").exists() and list((sweep_dir / "plots").glob("*.png"))
    # 9 grid runs: whatever the checks say, the design's calibration says it cannot tell (docs/fit.md),
    # and the first contact says what to run for a verdict.
    v = fit["verdict"]
    outcome, checked = v["outcome"], v["checked"]
    assert outcome == "untested" and v["untested_why"].startswith("this design cannot tell: at ")
    assert f"\nVERDICT: untested: whether loss scales smoothly with compute (the checks say {checked})\n" in (
        out.stdout
    )
    assert "\n  why  this design cannot tell: at " in out.stdout
    assert (
        "\n  next for a verdict, run the default sweep, whose design can give one: python -m harness.sweep"
        in (out.stdout)
    )
    plots = len(list((sweep_dir / "plots").glob("*.png")))
    assert f"  wrote      runs/smoke/: results.csv, fit.json, report.md, plots/ ({plots} PNGs)" in out.stdout
    sweep_json = json.loads((sweep_dir / "sweep.json").read_text())
    assert 0 < sweep_json["bayes_loss"] < float(min(r["val_loss"] for r in rows))
    group = f"smoke-{sweep_json['instance']}"
    assert f"offline runs of group {group}; upload them with:\n             wandb sync /" in out.stdout

    # W&B, read back from the offline files: one train run per training run, one fit run.
    runs = [read_offline_run(d) for d in offline_run_dirs(sweep_dir / "wandb")]
    train = [r for r in runs if r.job_type == "train"]
    assert len(train) == 9 and all(r.group == group for r in runs)
    assert all(r.tags == ["design:grid", "device:cpu", "family:llama", "preset:smoke"] for r in runs)
    (fit_run,) = [r for r in runs if r.job_type == "fit"]
    assert fit_run.summary["fit/verdict"] == outcome and fit_run.summary["fit/n_runs"] == 9
    (art,) = [a for a in fit_run.artifacts if a["type"] == "sweep-results"]
    assert {"results.csv", "fit.json", "report.md", "plots/loss_vs_compute.png"} <= set(art["files"])
    by_id = {r["run_id"]: r for r in rows}
    for run in train:
        spec_id = run.config["run_id"]
        assert run.config["params"]["total"] == int(by_id[spec_id]["params_total"])
        assert run.run_id == f"{group}-{spec_id}" and run.exit_code == 0
        history = [h for h in run.history if "val/loss" in h]
        assert len(history) == 3 and history[-1]["tokens"] == int(by_id[spec_id]["tokens"])
        assert history[-1]["val/loss"] == pytest.approx(float(by_id[spec_id]["val_loss"]))

    # A rerun of the same command trains nothing and leaves the results as they were.
    again = sweep("sweep=smoke", "train.threads=1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished earlier") == 1 and "val_loss=" not in again.stdout
    assert "  to train   nothing (9 of 9 finished earlier)\n" in again.stdout
    assert read_rows(sweep_dir / "results.csv") == rows


@pytest.mark.slow
def test_each_training_run_logs_a_training_loss_curve_to_wandb(tmp_path: Path) -> None:
    """The default preset's settings (sweep=cpu: train.evals=1, >= 200 steps a run) on two of its runs:
    each offline W&B run read back has >= 20 training-loss points (one every ~1% of its steps) beside
    its one eval, not the single eval row a run had when history was logged only at evals."""
    args = (
        "sweep=cpu",
        "sweep.widths=[10,14]",
        "sweep.flops=[1e10]",
        "sweep.seeds=[]",
        "sweep.replicate_budgets=[]",
    )
    out = sweep(*args, "logger.mode=offline", "train.threads=1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    sweep_dir = tmp_path / "runs" / "cpu"
    rows = {r["run_id"]: r for r in read_rows(sweep_dir / "results.csv")}
    runs = [read_offline_run(d) for d in offline_run_dirs(sweep_dir / "wandb")]
    train = [r for r in runs if r.job_type == "train"]
    assert len(train) == len(rows) == 2
    for run in train:
        steps = int(rows[run.config["run_id"]]["steps"])
        curve = [h for h in run.history if "train/loss" in h]
        assert 20 <= len(curve) <= steps, (steps, len(curve))
        assert all(0 < h["train/loss"] < 10 and h["tokens"] > 0 for h in curve)
        assert [h["_step"] for h in curve] == sorted({h["_step"] for h in curve})
        assert sum("val/loss" in h for h in run.history) == 1  # evals: 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sweep.tokens=[-5]"], "sweep.tokens[0]: must be > 0"),
        (["model.widht=64"], "model.widht: unknown config key"),
        (["train.lr=fast"], "train.lr"),
        (["sweep.widths=[30]"], "not divisible by model.head_dim"),
        (["data=nope"], "data: unknown option 'nope'"),
        (
            ["smoke"],
            "positional argument 'smoke': arguments are KEY=VALUE overrides; did you mean sweep=smoke?",
        ),
        (["sweep.name=.."], "sweep.name: must be one directory name inside the sweeps folder"),
        (["train.device=cuda"], "train.device: cuda, but torch sees no CUDA device"),
        (["sweep.tokens=[1000000000000000]"], "sweep.max_hours: the plan is estimated at"),
        (["sweep.dir=/proc/x"], "sweep.dir: cannot create or write /proc/x (/proc: "),
        (["sweep.dir=/proc/x", "sweep.dry_run=true"], "sweep.dir: cannot create or write /proc/x"),
        (["-m", "sweep.dir=/proc/x"], "sweep.dir: cannot create or write /proc/x"),
        (["sweep.seeds=[-1]"], "sweep.seeds[0]: a seed must be >= 0, got -1"),
        (
            ["sweep.name=ünï"],
            """sweep.name: 'ünï' holds 'ü', which Hydra reads only inside quotes; give "sweep.name='ünï'\"""",
        ),
        (
            ["-m", "hydra/launcher=slurm"],
            "hydra/launcher=slurm: no SLURM on this machine (no srun on the PATH)",
        ),
        (
            ["-m", "hydra/launcher=slurm", "sweep.dry_run=true"],
            "hydra/launcher=slurm: no SLURM on this machine",
        ),
        (["hydra/launcher=slurm"], "hydra/launcher=slurm: a launcher runs the jobs of a multirun; add -m"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str], expected: str) -> None:
    if args == ["train.device=cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    if "hydra/launcher=slurm" in args and shutil.which("srun"):
        pytest.skip("this machine has SLURM")
    out = sweep(*args, "sweep=smoke", cwd=tmp_path)  # Hydra's flags (-m) first
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], out.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_wandb_mode_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "bogus"}
    command = [sys.executable, "-m", "harness.sweep", "sweep=smoke", "sweep.dry_run=true"]
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "config error: WANDB_MODE: unknown value 'bogus' in the environment; allowed: online, offline, "
        "dryrun, disabled, run, shared (or unset it)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_hydra_flags_work(tmp_path: Path) -> None:
    out = sweep("--cfg", "job", "sweep=smoke", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "name: smoke" in out.stdout and "family: llama" in out.stdout
    assert list(tmp_path.iterdir()) == []


def test_changed_settings_for_the_same_sweep_name_are_refused(tmp_path: Path) -> None:
    first = sweep(
        "sweep=smoke",
        "logger=off",
        "sweep.stage=fit",
        "sweep.widths=[16]",
        "sweep.tokens=[16384]",
        cwd=tmp_path,
    )
    assert first.returncode != 0 or (tmp_path / "runs" / "smoke" / "sweep.json").exists()
    out = sweep("sweep=smoke", "logger=off", "sweep.stage=fit", "train.lr=1e-4", cwd=tmp_path)
    assert out.returncode == 2
    assert "sweep.name=NEW_NAME" in out.stderr


def test_gpu_preset_is_the_default_only_without_a_chosen_sweep_or_experiment(monkeypatch) -> None:
    import torch

    from harness.sweep import default_sweep

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_sweep(["logger=off"]) == ["logger=off", "sweep=gpu"]
    assert default_sweep(["sweep=smoke"]) == ["sweep=smoke"]
    assert default_sweep(["experiment=architecture"]) == ["experiment=architecture"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_sweep([]) == []
