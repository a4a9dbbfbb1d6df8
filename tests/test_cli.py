"""What a person at the terminal sees: the plan before training (and a dry run that stops there), Ctrl-C
as one line that says how to continue, a partial fit named as such, and `make clean` keeping results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import store
from harness.data import make_source
from harness.plan import plan_runs
from harness.report.terminal import sci
from tests.conftest import ROOT, compose_config, default_sigint, run_module

SMALL = ("sweep=smoke", "logger=off", "train.threads=1", "sweep.widths=[16]")


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    out = run_module("harness.sweep", "sweep.dry_run=true", "logger=off", "sweep=cpu", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    cfg = compose_config("sweep=cpu")
    specs = plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="x", precision="fp32")
    sizes, budgets = len({s.shape.width for s in specs}), len(cfg.sweep.flops)
    base = [s for s in specs if s.train.seed == cfg.train.seed]  # one run per configuration
    replicated = {(s.shape.width, s.tokens) for s in specs if s.train.seed != cfg.train.seed}
    for line in (
        "sweep cpu: llama on synthetic data, cpu fp32",
        f"  runs       {len(specs)}: {len(base)} configurations ({sizes} sizes, {budgets} isoflop budgets) + "
        f"{len(specs) - len(base)} replicates (seeds 1, 2 of {len(replicated)})\n",
        f"  budgets    {sci(min(cfg.sweep.flops))}, ",
        f", {sci(max(cfg.sweep.flops))} FLOPs\n",
        f"  to train   {len(specs)} runs\n",
        "  estimate   about ",
        "  results    runs/cpu/ (results.csv, fit.json, report.md, plots/)",
        "  W&B        disabled: logger=off",
        "dry run: nothing trained or written",
    ):
        assert line in out.stdout, line
    assert "val_loss=" not in out.stdout and out.stderr == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "jobs"),
    [(("sweep=lr_scan",), 7), (("-m", "experiment=proportion"), 3)],
    ids=["lr_scan", "experiment"],
)
def test_a_multiruns_dry_run_prints_each_job_and_writes_nothing(
    tmp_path: Path, args: tuple, jobs: int
) -> None:
    """No runs/<sweep>/multirun/ (Hydra's launcher) and no experiment.json (the experiment's callback)."""
    out = run_module("harness.sweep", *args, "sweep.dry_run=true", "logger=off", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("dry run: nothing trained or written") == jobs and out.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_is_one_line_saying_what_finished_and_the_rerun_continues(tmp_path: Path) -> None:
    args = [*SMALL, "sweep.tokens=[16384,8388608]"]  # one run of a second, then one of minutes
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.sweep", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("runs/smoke/runs/*/result.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "the first run never finished"
        time.sleep(0.1)
    time.sleep(1.0)  # inside the long run
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["interrupted: 1 of 2 runs done; rerun the same command to continue"]
    assert "Traceback" not in out + err

    again = run_module("harness.sweep", *args, "sweep.dry_run=true", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "  to train   1 runs (1 of 2 finished earlier)\n" in again.stdout


def test_a_fit_while_runs_still_train_elsewhere_says_it_is_partial(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "runs" / "smoke"
    first = run_module(
        "harness.sweep", *SMALL, "sweep.tokens=[16384,32768]", "sweep.stage=train", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    budgets = ("sweep.tokens=[16384,32768,65536]", "sweep.stage=fit")
    cfg = compose_config(*SMALL, *budgets)
    source = make_source(cfg.data)
    specs = plan_runs(
        cfg, vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision="fp32"
    )
    busy = store.try_lock(store.run_dir(sweep_dir, specs[-1].dirname))  # "another process" trains it
    try:
        out = run_module("harness.sweep", *SMALL, *budgets, cwd=tmp_path)
    finally:
        busy.release()
    assert out.returncode == 0, out.stderr
    said = " ".join(out.stdout.split())
    assert "PARTIAL 2 of 3 runs finished; 1 still training in another process, which refits the sweep" in said
    assert "not trained yet" not in said


def test_make_clean_keeps_results_and_only_clean_results_deletes_them() -> None:
    def commands(*target: str) -> str:
        proc = subprocess.run(["make", "-n", *target], cwd=ROOT, capture_output=True, text=True, check=True)
        return proc.stdout

    clean = commands("clean")
    assert "rm -rf" in clean and " runs" not in clean and ".venv" in clean
    assert "rm -rf runs" in commands("clean-results", "CONFIRM=yes")


def test_refitting_a_sweep_under_other_fit_settings_keeps_the_previous_fit(tmp_path: Path) -> None:
    args = ("sweep=smoke", "logger=off", "train.threads=1", "fit.bootstrap=20")
    first = run_module("harness.sweep", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    sweep_dir = tmp_path / "runs" / "smoke"
    same = run_module("harness.sweep", *args, "sweep.stage=fit", cwd=tmp_path)
    assert same.returncode == 0 and not (sweep_dir / "refits").exists()  # same settings: same fit
    fit = (sweep_dir / "fit.json").read_text()
    other = run_module("harness.sweep", *args, "sweep.stage=fit", "fit.flops=6n", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    kept = sweep_dir / "refits" / "1"
    assert "the previous fit (other fit settings) is kept in runs/smoke/refits/1/\n" in other.stdout
    assert (kept / "fit.json").read_text() == fit and (kept / "report.md").is_file()
    assert (kept / "plots" / "loss_vs_compute.png").is_file()
    assert '"flops": "6n"' in (sweep_dir / "fit.json").read_text()
