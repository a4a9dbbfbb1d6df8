"""A sweep split into jobs by Hydra's launchers: every job trains its shard into the one sweep dir, the
fit runs once after all of them in the launching process and equals the single-process fit; jobs at
once x threads never oversubscribe the usable cores; shards take GPUs in turn. (Each launcher run
starts a process per job, ~10 s of imports each, so only submitit_local runs end to end here.)"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from harness import sweep as sweep_module
from harness.config import Config, ConfigError, register_configs
from harness.device import usable_cores
from harness.launch import cpu_layout, job_configs, jobs_at_once, place_on_gpu, runs_here
from tests.conftest import CONFIG_DIR, assert_close, compose_config, run_module

# 6 runs, enough for a fit; smaller than the smoke preset.
TINY = ("sweep=smoke", "logger=off", "sweep.widths=[16,32]", "sweep.tokens=[16384,32768,65536]")
TINY += ("fit.bootstrap=20",)
SUMMARY = "\nVERDICT: "  # the verdict line of the fit's printed summary


def launcher(*overrides: str) -> dict:
    """The resolved `hydra.launcher` config `python -m harness.sweep -m OVERRIDES` launches with."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def test_jobs_at_once_follows_the_launcher() -> None:
    from joblib import cpu_count

    assert jobs_at_once(launcher("hydra/launcher=basic"), 4) == 1
    assert jobs_at_once(launcher("hydra/launcher=joblib", "hydra.launcher.n_jobs=3"), 5) == 3
    assert jobs_at_once(launcher("hydra/launcher=joblib", "hydra.launcher.n_jobs=3"), 2) == 2
    assert jobs_at_once(launcher("hydra/launcher=joblib"), 64) == min(cpu_count(), 64)  # n_jobs=-1
    assert jobs_at_once(launcher("hydra/launcher=local"), 3) == 3  # submitit_local starts every job
    assert jobs_at_once(launcher("hydra/launcher=submitit_local"), 3) == 3
    assert jobs_at_once(launcher("hydra/launcher=slurm"), 8) == 1  # each job in its own allocation
    assert not runs_here(launcher("hydra/launcher=slurm")) and runs_here(launcher("hydra/launcher=local"))


def test_slurm_config_has_the_cluster_fields() -> None:
    slurm = launcher("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "sweep=gpu")
    assert slurm["partition"] == "gpu" and slurm["gpus_per_node"] == 1 and slurm["tasks_per_node"] == 1
    assert slurm["timeout_min"] > 0 and slurm["array_parallelism"] > 0
    assert slurm["submitit_folder"] == "runs/gpu/multirun/.submitit/%j"  # logs inside the sweep dir


@pytest.mark.parametrize(
    ("threads", "workers", "jobs", "cores", "expected"),
    [
        (0, 0, 1, 2, (2, 1)),  # the default: a one-thread process per core
        (0, 0, 2, 2, (1, 1)),
        (0, 0, 3, 8, (2, 1)),
        (0, 1, 1, 2, (1, 2)),  # one process: its threads take the cores
        (2, 0, 1, 2, (1, 2)),
        (2, 0, 1, 5, (2, 2)),
        (1, 2, 2, 4, (2, 1)),
        (4, 0, 1, 16, (4, 4)),
        (0, 3, 1, 16, (3, 5)),
    ],
)
def test_cpu_layout_splits_the_cores(
    threads: int, workers: int, jobs: int, cores: int, expected: tuple
) -> None:
    assert cpu_layout(threads, workers, jobs, cores) == expected


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ((0, 0, 3, 2), "hydra.launcher: 3 jobs at once > 2 usable cores; allowed: at most 2 at once (sweep"),
        ((2, 0, 2, 2), "train.threads: 2 threads x 2 jobs at once > 2 usable cores; allowed: 0 (auto) to 1"),
        (
            (0, 3, 1, 2),
            "sweep.workers: 3 runs x 1 thread x 1 job at once > 2 usable cores; allowed: 0 (auto) to 2",
        ),
        (
            (2, 3, 1, 4),
            "sweep.workers: 3 runs x 2 threads x 1 job at once > 4 usable cores; allowed: 0 (auto) to 2",
        ),
    ],
)
def test_oversubscription_is_refused(layout: tuple[int, int, int, int], message: str) -> None:
    """(train.threads, sweep.workers, jobs at once, usable cores) beyond the cores: one line."""
    with pytest.raises(ConfigError) as err:
        cpu_layout(*layout)
    assert str(err.value).startswith(message)


def test_shards_take_the_visible_gpus_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert [place_on_gpu(shard, "auto") for shard in range(6)] == [0, 1, 2, 3, 0, 1]
    assert chosen == [0, 1, 2, 3, 0, 1]
    assert place_on_gpu(1, "cpu") is None and len(chosen) == 6
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # SLURM: each job sees its own GPU
    assert place_on_gpu(5, "cuda") == 0


def test_job_configs_expand_the_shards_and_other_sweeps() -> None:
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*TINY, "sweep.num_shards=3"], return_hydra_config=True)
        jobs = job_configs(cfg)
        assert [j.sweep.shard for j in jobs] == [0, 1, 2]
        assert {(j.sweep.num_shards, j.sweep.dir, tuple(j.sweep.widths)) for j in jobs} == {
            (3, "runs/smoke", (16, 32))
        }
        with open_dict(cfg):  # as if `train.lr=1e-3,2e-3` were on the command line
            cfg.hydra.overrides.task.append("train.lr=1e-3,2e-3")
        assert sorted((j.train.lr, j.sweep.shard) for j in job_configs(cfg)) == [
            (1e-3, 0), (1e-3, 1), (1e-3, 2), (2e-3, 0), (2e-3, 1), (2e-3, 2),
        ]  # fmt: skip
        with open_dict(cfg):  # a directory per LR, typed on the command line: resolved in each job
            cfg.hydra.overrides.task.append("sweep.dir=runs/lr${train.lr}")
        assert {(j.train.lr, j.sweep.dir) for j in job_configs(cfg)} == {
            (1e-3, "runs/lr0.001"), (2e-3, "runs/lr0.002"),
        }  # fmt: skip


def test_after_the_jobs_each_sweep_is_fitted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    shards = [f"sweep.shard={k}" for k in (0, 1)]
    jobs = [compose_config(*TINY, k, "sweep.num_shards=2", f"sweep.dir={d}") for d in "ab" for k in shards]
    fitted = []

    def fit(cfg: Config, jobs: int = 1) -> None:
        fitted.append((cfg.sweep.dir, cfg.sweep.stage))

    monkeypatch.setattr(sweep_module, "job_configs", lambda config: jobs)
    monkeypatch.setattr(sweep_module, "run_sweep", fit)
    sweep_module.FitAfterJobs().on_multirun_end(config=None)
    assert fitted == [("a", "fit"), ("b", "fit")]


def test_a_failed_fit_fails_the_multirun(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(cfg: Config, jobs: int = 1) -> None:
        raise RuntimeError("the fit crashed")

    monkeypatch.setattr(sweep_module, "job_configs", lambda config: [compose_config(*TINY)])
    monkeypatch.setattr(sweep_module, "run_sweep", crash)
    with pytest.raises(SystemExit) as exit_:  # not Hydra's warning about a callback's exception
        sweep_module.FitAfterJobs().on_multirun_end(config=None)
    assert exit_.value.code == 1 and "RuntimeError: the fit crashed" in capsys.readouterr().err


def sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_module("harness.sweep", *args, *TINY, cwd=cwd)  # flags (-m) before the overrides


def read_rows(sweep_dir: Path) -> dict[str, dict]:
    with open(sweep_dir / "results.csv", newline="") as f:
        return {r["run_id"]: r for r in csv.DictReader(f)}


def read_fit(sweep_dir: Path) -> dict:
    """fit.json without meta (which records the config, shard and stage included)."""
    fit = json.loads((sweep_dir / "fit.json").read_text())
    del fit["meta"]
    return fit


@pytest.mark.slow
def test_submitit_local_splits_the_sweep_and_fits_once_like_one_process(tmp_path: Path) -> None:
    plain = sweep_module.run_sweep(compose_config(*TINY, f"sweep.dir={tmp_path / 'plain'}"))
    rows = read_rows(plain)
    assert len(rows) == 6 and {r["status"] for r in rows.values()} == {"done"}

    cwd = tmp_path / "cwd"
    shards = min(2, usable_cores())  # jobs at once never exceed the cores (1 under `taskset -c 1`)
    out = sweep("-m", "hydra/launcher=local", f"sweep.num_shards={shards}", "sweep.dir=local", cwd=cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"#{shards - 1} : sweep.shard={shards - 1}" in out.stdout + out.stderr
    got = read_rows(cwd / "local")
    assert got.keys() == rows.keys() and {r["status"] for r in got.values()} == {"done"}
    # 1-thread jobs against a 2-thread process: equal within a tolerance, not bit for bit
    assert {k: float(r["val_loss"]) for k, r in got.items()} == pytest.approx(
        {k: float(r["val_loss"]) for k, r in rows.items()}, rel=1e-4
    )
    assert_close(read_fit(cwd / "local"), read_fit(plain))
    assert out.stdout.count(SUMMARY) == 1  # the launching process fits once
    # each job logs inside the sweep dir: it trained its shard and did not fit
    logs = sorted((cwd / "local" / "multirun" / ".submitit").glob("*/*_log.out"))
    assert len(logs) == shards and sum(p.read_text().count("val_loss=") for p in logs) == 6
    assert all(p.read_text().count("val_loss=") and SUMMARY not in p.read_text() for p in logs)
    assert [p.name for p in cwd.iterdir()] == ["local"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-m", "hydra/launcher=local", "sweep.num_shards={over}"), "hydra.launcher: {over} jobs at once >"),
        (("train.threads={over}",), "train.threads: {over} threads x 1 job at once > {cores} usable cores"),
    ],
)
def test_oversubscription_is_one_line_and_writes_nothing(tmp_path: Path, args: tuple, expected: str) -> None:
    cores = usable_cores()
    out = sweep(*(a.format(over=cores + 1) for a in args), cwd=tmp_path)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert expected.format(over=cores + 1, cores=cores) in lines[0]
    assert list(tmp_path.iterdir()) == []
