"""One scheduler per machine, shards only for a cluster: the local layout (runs at once x threads) never
oversubscribes the usable cores and gives one torch thread per run by default; shards on this machine are
refused with one line; a cluster's shards (trained here one after another, as its jobs would) each train
their share into the one sweep dir, and the fit once after them equals the single-process fit; shards
take GPUs in turn."""

from __future__ import annotations

import csv
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from harness import sweep as sweep_module
from harness.compose import compose_raw
from harness.config import Config, ConfigError, register_configs
from harness.device import cpu_layout, usable_cores
from harness.launch import check_sharding, job_configs, place_on_gpu
from tests.conftest import CONFIG_DIR, assert_close, compose_config, run_module

# 6 runs, enough for a fit; smaller than the smoke preset.
TINY = ("sweep=smoke", "logger=off", "sweep.widths=[16,32]", "sweep.tokens=[16384,32768,65536]")
TINY += ("fit.bootstrap=20",)
SUMMARY = "\nVERDICT: "  # the verdict line of the fit's printed summary


def launcher(*overrides: str) -> dict:
    """The resolved `hydra.launcher` config `python -m harness.sweep -m OVERRIDES` launches with."""
    return OmegaConf.to_container(compose_raw(*overrides).hydra.launcher, resolve=True)


def test_shards_go_only_to_a_cluster_launcher() -> None:
    check_sharding(launcher("hydra/launcher=slurm"), 8)
    check_sharding(None, 1)
    for where in (launcher("hydra/launcher=basic"), None):
        with pytest.raises(ConfigError, match="sweep.num_shards: 2 shards are jobs of a cluster"):
            check_sharding(where, 2)


def test_slurm_config_has_the_cluster_fields() -> None:
    slurm = launcher("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "sweep=gpu")
    assert slurm["partition"] == "gpu" and slurm["gpus_per_node"] == 1 and slurm["tasks_per_node"] == 1
    assert slurm["timeout_min"] > 0 and slurm["array_parallelism"] > 0
    assert slurm["submitit_folder"] == "runs/gpu/multirun/.submitit/%j"  # logs inside the sweep dir


@pytest.mark.parametrize(
    ("threads", "workers", "cores", "expected"),
    [
        (0, 0, 2, (2, 1)),  # the default: a one-thread process per core
        (0, 1, 2, (1, 1)),  # one run at once still takes one thread (a shared machine)
        (2, 0, 2, (1, 2)),
        (2, 0, 5, (2, 2)),
        (4, 0, 16, (4, 4)),
        (0, 3, 16, (3, 1)),
        (3, 2, 8, (2, 3)),
    ],
)
def test_cpu_layout_splits_the_cores(threads: int, workers: int, cores: int, expected: tuple) -> None:
    assert cpu_layout(threads, workers, cores) == expected


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ((3, 0, 2), "train.threads: 3 > 2 usable cores; allowed: 0 (one) to 2"),
        ((0, 3, 2), "sweep.workers: 3 runs x 1 thread > 2 usable cores; allowed: 0 (auto) to 2"),
        ((2, 3, 4), "sweep.workers: 3 runs x 2 threads > 4 usable cores; allowed: 0 (auto) to 2"),
    ],
)
def test_oversubscription_is_refused(layout: tuple[int, int, int], message: str) -> None:
    """(train.threads, sweep.workers, usable cores) beyond the cores: one line."""
    with pytest.raises(ConfigError) as err:
        cpu_layout(*layout)
    assert str(err.value) == message


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

    def fit(cfg: Config, command: bool = False) -> None:
        fitted.append((cfg.sweep.dir, cfg.sweep.stage))

    monkeypatch.setattr(sweep_module, "job_configs", lambda config: jobs)
    monkeypatch.setattr(sweep_module, "run_sweep", fit)
    sweep_module.FitAfterJobs().on_multirun_end(config=None)
    assert fitted == [("a", "fit"), ("b", "fit")]


def test_a_failed_fit_fails_the_multirun(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(cfg: Config, command: bool = False) -> None:
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
def test_a_clusters_shards_train_their_share_and_fit_once_like_one_process(tmp_path: Path) -> None:
    plain = sweep_module.run_sweep(compose_config(*TINY, f"sweep.dir={tmp_path / 'plain'}"))
    rows = read_rows(plain)
    assert len(rows) == 6 and {r["status"] for r in rows.values()} == {"done"}
    sharded = tmp_path / "sharded"
    for k in (0, 1):  # what each of 2 cluster jobs runs: its shard, training only
        job = compose_config(*TINY, f"sweep.dir={sharded}", "sweep.num_shards=2", f"sweep.shard={k}")
        sweep_module.run_sweep(replace(job, sweep=replace(job.sweep, stage="train")))
        assert len(list((sharded / "runs").glob("*/result.json"))) == 3 * (k + 1)
    fit = compose_config(*TINY, f"sweep.dir={sharded}", "sweep.num_shards=2", "sweep.stage=fit")
    sweep_module.run_sweep(fit)
    got = read_rows(sharded)
    assert got.keys() == rows.keys() and {r["status"] for r in got.values()} == {"done"}
    assert {k: float(r["val_loss"]) for k, r in got.items()} == pytest.approx(
        {k: float(r["val_loss"]) for k, r in rows.items()}, rel=1e-4
    )
    assert_close(read_fit(sharded), read_fit(plain))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-m", "sweep.num_shards=2"), "sweep.num_shards: 2 shards are jobs of a cluster"),
        (("sweep.num_shards=2",), "sweep.num_shards: 2 shards are jobs of a cluster"),
        (("train.threads={over}",), "train.threads: {over} > {cores} usable cores"),
    ],
)
def test_local_shards_and_oversubscription_are_one_line_and_write_nothing(
    tmp_path: Path, args: tuple, expected: str
) -> None:
    cores = usable_cores()
    out = sweep(*(a.format(over=cores + 1) for a in args), cwd=tmp_path)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert expected.format(over=cores + 1, cores=cores) in lines[0]
    assert list(tmp_path.iterdir()) == []
