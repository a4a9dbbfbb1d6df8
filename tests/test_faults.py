"""Fault injection: a sweep killed, diverging, run twice at once, losing W&B or its disk, fed bad input.

Every test injects one fault into a real sweep and checks that no finished result is lost, no run is
trained twice, the numbers equal those of an undisturbed sweep (to float rounding: runs train in
separate processes), no training process outlives its sweep, and the user is told what went wrong.
Faults that need a real process (SIGKILL, Ctrl-C, two processes) run the CLI; the others are patched
into this process and train there (`sweep.workers=1`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import random
import re
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import harness.data.synthetic
import harness.sweep
import harness.train
from harness import store
from harness.sweep import run_sweep
from harness.tracking import wandb_run as lg
from harness.tracking.offline import offline_run_dirs
from tests.conftest import ROOT, assert_close, compose_config, default_sigint, run_module

# One torch thread per training process, so that every sweep here computes the numbers of the shared
# reference (and two concurrent sweeps share the cores without oversubscribing them more than 2x).
SMOKE = ("sweep=smoke", "logger=off", "train.threads=1")
IN_PROCESS = (*SMOKE, "sweep.workers=1")  # a fault patched into this process reaches its runs


def _results(sweep_dir: Path) -> dict[str, dict]:
    """results.csv by run id, after checking it is whole: one row per run id, every field present."""
    text = (sweep_dir / "results.csv").read_text()
    assert text.endswith("\n")
    rows = store.read_results_table(sweep_dir)
    assert all(None not in row and None not in row.values() for row in rows), "a short or long row"
    by_id = {row["run_id"]: row for row in rows}
    assert len(by_id) == len(rows), "a run id appears twice"
    return by_id


def _fit(sweep_dir: Path) -> dict:
    """fit.json without its meta (which names the sweep's own directory)."""
    fit = json.loads((sweep_dir / "fit.json").read_text())
    fit.pop("meta")
    return fit


def _val_losses(sweep_dir: Path) -> dict[str, float]:
    return {rid: float(row["val_loss"]) for rid, row in _results(sweep_dir).items()}


def _trained(log: str) -> list[str]:
    """Run ids that a sweep's progress lines report as trained to the end."""
    return re.findall(r"\] \S+ +([0-9a-f]{12}) (?:val_loss=|DIVERGED)", log)


def _start(args: list[str], cwd: Path, log: Path, **popen) -> subprocess.Popen:
    """`python -m harness.sweep ARGS` in the background, its output to `log`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "harness.sweep", *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=out,
            preexec_fn=default_sigint,
            **popen,
        )


def _run_ids(sweep_dir: Path, file: str, since: float = 0.0) -> set[str]:
    """Run ids (run dirs are <name>-<run_id>) whose `file` exists, written at or after `since`."""
    paths = (sweep_dir / "runs").glob(f"*/{file}")
    return {p.parent.name.rsplit("-", 1)[1] for p in paths if p.stat().st_mtime >= since}


def _finished(sweep_dir: Path) -> set[str]:
    return _run_ids(sweep_dir, "result.json")


def _half_trained(sweep_dir: Path, since: float = 0.0) -> set[str]:
    """Runs started (spec.json written) at or after `since` and not finished."""
    return _run_ids(sweep_dir, "spec.json", since) - _finished(sweep_dir)


def _kill(
    proc: subprocess.Popen, log: Path, when, delay: float, sig: int = signal.SIGKILL, group: bool = False
) -> list[int]:
    """Send `sig` to `proc` (`group`: to its process group, as a terminal's Ctrl-C does) `delay` seconds
    after `when()` first holds (it must still be running by then), wait for it, and check that none of
    the processes descending from it outlives it; return those."""
    deadline = time.monotonic() + 120
    while not when() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    children = _children(proc.pid)
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    code = proc.wait(timeout=60)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL, log.read_text()[-2000:]
    deadline = time.monotonic() + 30
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(children), f"processes {_alive(children)} outlived the sweep"
    return children


def _children(pid: int) -> list[int]:
    """Every process descending from `pid` (from /proc): the training processes may be grandchildren."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _alive(pids: list[int]) -> list[int]:
    """The pids still running (a zombie has finished)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke sweep, trained once without faults: what every faulted smoke sweep must reproduce."""
    sweep_dir = tmp_path_factory.mktemp("reference") / "sweep"
    run_sweep(compose_config(*SMOKE, f"sweep.dir={sweep_dir}"))
    return sweep_dir


@pytest.mark.slow
def test_sweep_killed_five_times_ends_with_every_run_done_once(tmp_path: Path, reference: Path) -> None:
    rng = random.Random(6)
    sweep_dir = tmp_path / "sweep"
    args = [*SMOKE, f"sweep.dir={sweep_dir}"]
    logs, mid_run = [], 0
    for attempt in range(5):
        log = tmp_path / f"attempt{attempt}.log"
        before, t0 = _finished(sweep_dir), time.time()
        proc = _start(args, tmp_path, log)
        if attempt == 0:  # anywhere in start-up, planning or the first runs
            _kill(proc, log, lambda: True, rng.uniform(0.5, 5.0))
        elif attempt % 2:  # just after this attempt starts a run: inside it, whatever the machine's speed
            _kill(proc, log, lambda t0=t0: bool(_half_trained(sweep_dir, t0)), rng.uniform(0.0, 0.05))
        else:  # once this attempt has finished a run of its own: inside or between runs
            _kill(proc, log, lambda before=before: _finished(sweep_dir) > before, rng.uniform(0.0, 0.5))
        mid_run += bool(_half_trained(sweep_dir))
        logs.append(log.read_text())
    assert mid_run >= 2, "too few kills landed inside a run"
    assert _finished(sweep_dir) < set(_results(reference)), "the kills left nothing to finish"

    final = run_module("harness.sweep", *args, cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-3000:]
    trained = [rid for log in [*logs, final.stdout] for rid in _trained(log)]
    assert len(trained) == len(set(trained)), "a run was trained to the end twice"
    earlier = re.search(r"\((\d+) of 9 finished earlier\)", final.stdout)
    assert (int(earlier[1]) if earlier else 0) + len(_trained(final.stdout)) == 9

    rows = _results(sweep_dir)
    assert set(rows) == set(_results(reference)) and {r["status"] for r in rows.values()} == {"done"}
    for row in rows.values():
        result = store.read_result(store.run_dir(sweep_dir, store.row_dirname(row)))
        assert result is not None and float(row["val_loss"]) == result["val_loss"]
    assert_close(_val_losses(sweep_dir), _val_losses(reference), rel=1e-5)
    assert_close(_fit(sweep_dir), _fit(reference))


@pytest.mark.slow
def test_ctrl_c_stops_every_training_process_and_the_rerun_finishes(tmp_path: Path, reference: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    args = [*SMOKE, f"sweep.dir={sweep_dir}"]
    log = tmp_path / "interrupted.log"
    proc = _start(args, tmp_path, log, start_new_session=True)  # its own group, to Ctrl-C it alone
    children = _kill(proc, log, lambda: _half_trained(sweep_dir), 0.2, sig=signal.SIGINT, group=True)
    assert proc.returncode == 130, log.read_text()[-2000:]
    last = log.read_text().splitlines()[-1]
    assert re.fullmatch(r"interrupted: \d of 9 runs done; rerun the same command to continue", last), last
    assert len(children) >= 3, "no forkserver and two training processes: the runs trained here"
    assert _finished(sweep_dir) < set(_results(reference)), "nothing was left to finish"

    final = run_module("harness.sweep", *args, cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-3000:]
    assert_close(_val_losses(sweep_dir), _val_losses(reference), rel=1e-5)


@pytest.mark.slow
def test_run_killed_inside_resumes_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = [*SMOKE, "sweep.stage=train", "sweep.widths=[16]", "sweep.tokens=[262144]", "train.evals=16"]
    killed = [*settings, "train.checkpoint_every=16", f"sweep.dir={tmp_path / 'killed'}"]
    log = tmp_path / "killed.log"
    delay = random.Random(2).uniform(0.0, 0.5)  # after the first checkpoint, before the end
    _kill(_start(killed, tmp_path, log), log, lambda: _checkpoints(tmp_path / "killed"), delay)
    (run,) = [path.parent for path in _checkpoints(tmp_path / "killed")]
    assert not (run / "result.json").exists(), "the run ended before the kill"
    step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    kept = [row for row in _metrics_lines(run) if json.loads(row)["step"] <= step]
    assert kept, "no eval before the checkpoint to check the resume by"

    steps_trained: list[int] = []
    real_batch = harness.data.synthetic.SyntheticSource.train_batch

    def counted_batch(self, step: int, *args):
        steps_trained.append(step)
        return real_batch(self, step, *args)

    monkeypatch.setattr(harness.data.synthetic.SyntheticSource, "train_batch", counted_batch)
    # the start screen's estimate times a few steps of the loop itself: not the rerun's training
    monkeypatch.setattr(harness.sweep.Planned, "estimate", lambda self, command=False: None)
    run_sweep(compose_config(*killed))  # the rerun, in this process to see the steps it trains
    steps = store.read_result(run)["steps"]
    assert steps_trained == list(range(step, steps)), "the rerun did not start at the checkpoint"
    assert _metrics_lines(run)[: len(kept)] == kept  # the evals before it were not run again
    assert len(_metrics_lines(run)) == 16 and not (run / "checkpoint.pt").exists()

    steps_trained.clear()
    whole = run_sweep(compose_config(*settings, f"sweep.dir={tmp_path / 'whole'}"))
    assert len(steps_trained) == steps
    resumed_loss = store.read_result(run)["val_loss"]
    assert resumed_loss == pytest.approx(store.read_result(whole / "runs" / run.name)["val_loss"], abs=1e-6)


def _checkpoints(sweep_dir: Path) -> list[Path]:
    return list((sweep_dir / "runs").glob("*/checkpoint.pt"))


def _metrics_lines(run: Path) -> list[str]:
    return (run / "metrics.jsonl").read_text().splitlines()


def _nan_from_training_step(step: int):
    """F.cross_entropy whose training losses are NaN from the step-th optimiser step on."""
    calls = {"n": 0}

    def cross_entropy(logits, target, **kw):
        loss = F.cross_entropy(logits, target, **kw)
        if logits.requires_grad:
            calls["n"] += 1
            if calls["n"] >= step:
                return loss * math.nan
        return loss

    return cross_entropy


@pytest.mark.slow
def test_diverged_run_is_recorded_the_sweep_goes_on_and_the_fit_leaves_it_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, reference: Path
) -> None:
    victim = "w32-d1-t32768"
    real_train_run = harness.train.train_run

    def train_run(spec, *args):
        with monkeypatch.context() as m:
            if spec.name == victim:
                m.setattr(harness.train, "F", SimpleNamespace(cross_entropy=_nan_from_training_step(7)))
            return real_train_run(spec, *args)

    monkeypatch.setattr(harness.train, "train_run", train_run)
    sweep_dir = run_sweep(compose_config(*IN_PROCESS, f"sweep.dir={tmp_path / 'sweep'}"))
    out = capsys.readouterr().out
    assert re.search(rf"\[5/9\] {victim} +[0-9a-f]+ DIVERGED at step 7 ", out)
    assert len(_trained(out)) == 9  # the runs after it trained as usual

    rows = _results(sweep_dir)
    (rid,) = [rid for rid, row in rows.items() if row["status"] == "diverged"]
    assert rows[rid]["diverged_step"] == "7" and rows[rid]["val_loss"] == ""
    expected = _val_losses(reference)
    del expected[rid]
    assert_close({r: float(row["val_loss"]) for r, row in rows.items() if r != rid}, expected, rel=1e-5)
    fit = _fit(sweep_dir)
    assert fit["n_runs"] == 8 and fit["excluded"] == [{"run_id": rid, "why": "status diverged"}]
    assert f"- {rid}: status diverged" in (sweep_dir / "report.md").read_text()


@pytest.mark.slow
def test_two_sweeps_on_one_directory_share_the_runs(tmp_path: Path, reference: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    args = [*SMOKE, f"sweep.dir={sweep_dir}"]
    procs = [_start(args, tmp_path, tmp_path / f"p{i}.log") for i in range(2)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0
    logs = [(tmp_path / f"p{i}.log").read_text() for i in range(2)]
    trained = _trained(logs[0]) + _trained(logs[1])
    assert sorted(trained) == sorted(_results(reference)), "a run was trained twice, or not at all"
    assert all(_trained(log) for log in logs), "one process trained everything: no overlap tested"
    assert sum(log.count("being trained by another process, skipped") for log in logs) >= 1
    assert_close(_val_losses(sweep_dir), _val_losses(reference), rel=1e-5)
    assert_close(_fit(sweep_dir), _fit(reference))
    assert not list(sweep_dir.rglob("*.tmp"))


def test_wandb_disk_full_warns_once_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import wandb

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", disk_full)
    monkeypatch.setattr(lg, "_warned", set())
    monkeypatch.setenv("WANDB_MODE", "offline")
    small = ("sweep=smoke", "sweep.widths=[16,32]", "sweep.tokens=[16384,32768]", "sweep.stage=train")
    small += ("sweep.workers=1",)
    sweep_dir = run_sweep(compose_config(*small, "logger=wandb", f"sweep.dir={tmp_path / 'sweep'}"))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    rows = _results(sweep_dir)
    assert len(rows) == 4 and {row["status"] for row in rows.values()} == {"done"}
    without_wandb = run_sweep(compose_config(*small, "logger=off", f"sweep.dir={tmp_path / 'off'}"))
    assert _val_losses(sweep_dir) == _val_losses(without_wandb)
    assert len(offline_run_dirs(sweep_dir / "wandb")) == 4  # W&B was on until the disk filled


def _cli(*args: str) -> None:
    """`python -m harness.sweep ARGS` in this process, so that a fault can be patched in."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sys, "argv", ["harness.sweep", *args])
        runpy.run_module("harness.sweep", run_name="__main__", alter_sys=True)


@pytest.mark.filterwarnings("ignore:'harness.sweep' found in sys.modules:RuntimeWarning")  # _cli's rerun
def test_disk_full_on_a_result_stops_the_sweep_and_the_rerun_retrains_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    sweep_dir = tmp_path / "sweep"
    args = [
        *IN_PROCESS,
        "sweep.widths=[16]",
        "sweep.tokens=[16384,32768]",
        "sweep.stage=train",
        f"sweep.dir={sweep_dir}",
    ]
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up while result.json is being written
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".result.json."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", fsync)
        with pytest.raises(SystemExit) as stopped:
            _cli(*args)
    assert stopped.value.code == 1
    (run,) = (sweep_dir / "runs").iterdir()  # the second run was not started
    full = f"error: [Errno {errno.ENOSPC}] cannot write {run / 'result.json'}: No space left on device"
    assert capsys.readouterr().err.strip().splitlines() == [full]
    assert not (run / "result.json").exists() and not list(run.glob(".result.json.*"))
    assert not (sweep_dir / "results.csv").exists()

    _cli(*args)
    out = capsys.readouterr().out
    assert len(_trained(out)) == 2 and "skipped" not in out
    assert {row["status"] for row in _results(sweep_dir).values()} == {"done"}


@pytest.mark.slow
def test_a_write_failing_in_a_training_process_stops_the_sweep_in_one_line(
    tmp_path: Path, reference: Path
) -> None:
    sweep_dir = tmp_path / "sweep"
    args = [*SMOKE, "sweep.workers=2", f"sweep.dir={sweep_dir}"]
    row = max(_results(reference).values(), key=lambda row: float(row["flops"]))  # trained first
    victim, blocker = row["run_id"], store.run_dir(sweep_dir, store.row_dirname(row)) / store.RESULT
    blocker.mkdir(parents=True)  # its result cannot be written: a directory is in the way
    log = tmp_path / "failed.log"
    proc = _start(args, tmp_path, log)
    _kill(proc, log, lambda: proc.poll() is not None, 0.0, sig=0)  # it stops by itself
    assert proc.returncode == 1
    lines = [line for line in log.read_text().splitlines() if "error" in line.lower()]
    assert lines == [f"error: [Errno {errno.EISDIR}] cannot write {blocker}: Is a directory"]
    assert store.read_result(blocker.parent) is None and not (sweep_dir / "results.csv").exists()

    blocker.rmdir()
    final = run_module("harness.sweep", *args, cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-3000:]
    assert victim in _trained(final.stdout)
    assert_close(_val_losses(sweep_dir), _val_losses(reference), rel=1e-5)


@pytest.mark.slow
def test_vocab_smaller_than_the_data_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("\n\n".join(f"note {i}: the harness reads paragraphs" for i in range(200)))
    out = run_module(
        "harness.sweep",
        *SMOKE,
        "data=text",
        f"data.files=[{text}]",
        "data.tokenizer=bytes",
        "data.vocab_size=100",
        cwd=tmp_path / "cwd",
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "config error: data.vocab_size: 100 is smaller than the data's 256 token ids"
    ]
    assert out.stdout == "" and list((tmp_path / "cwd").iterdir()) == []
