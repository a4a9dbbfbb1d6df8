"""Where a multirun's jobs run: how many share this machine, how many CPU threads and which GPU each
gets, and each job's config, for Hydra's launchers.

`python -m harness.sweep -m hydra/launcher=joblib sweep.num_shards=K` splits the planned runs into K
jobs (configs/config.yaml sweeps `sweep.shard` over range(K)); the launcher (joblib, submitit_local,
submitit_slurm) decides where they run, and this module sizes each job to its share of the machine.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from harness.config import Config, ConfigError

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
SUBMITIT_LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
SUBMITIT_SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


def check_launcher(launcher: Mapping[str, Any], choice: str | None, *, multirun: bool) -> None:
    """ConfigError, before anything is written, for a launcher that would not do what was asked: one
    chosen without -m (Hydra ignores launchers outside a multirun: the sweep would train here), or
    SLURM's where there is no SLURM (submitit's own test: `srun` on the PATH). `choice`: the
    hydra/launcher option, `launcher`: its config."""
    if not multirun:
        if choice not in (None, "basic"):
            raise ConfigError(
                f"hydra/launcher={choice}: a launcher runs the jobs of a multirun; add -m (and "
                "sweep.num_shards=K to split the sweep into K jobs), or drop it to train in this process"
            )
        return
    if launcher.get("_target_") == SUBMITIT_SLURM and shutil.which("srun") is None:
        raise ConfigError(
            f"hydra/launcher={choice}: no SLURM on this machine (no srun on the PATH); submit from the "
            "cluster's login node, or use hydra/launcher=local to run the jobs here"
        )


def runs_here(launcher: Mapping[str, Any]) -> bool:
    """Whether the launcher runs its jobs on this machine (all but a cluster's, submitit_slurm)."""
    return launcher.get("_target_") != SUBMITIT_SLURM


def jobs_at_once(launcher: Mapping[str, Any], num_jobs: int) -> int:
    """How many of num_jobs jobs the launcher (the `hydra.launcher` config) runs at the same time on
    this machine: joblib up to its n_jobs (joblib's count: -1 = every usable core), submitit_local all
    of them; the basic launcher runs them one after another and a cluster gives each its own
    allocation (whose cores the job's CPU affinity already is), so one."""
    target = launcher.get("_target_", "")
    if target == JOBLIB:
        from joblib import effective_n_jobs

        return min(effective_n_jobs(launcher["n_jobs"]), num_jobs)
    return num_jobs if target == SUBMITIT_LOCAL else 1


def cpu_layout(threads: int, workers: int, jobs: int, cores: int) -> tuple[int, int]:
    """(training processes at once, torch threads each) of one of `jobs` jobs at once on `cores` usable
    cores: `sweep.workers` x `train.threads`, where 0 takes the job's share of the cores: one thread per
    process and a process per core by default (the models are too small for a second thread to pay,
    and one-thread processes keep their speed when anything else runs). ConfigError when jobs x
    processes x threads would oversubscribe the cores."""
    if jobs > cores:
        raise ConfigError(
            f"hydra.launcher: {jobs} jobs at once > {cores} usable cores; allowed: at most {cores} at once "
            "(sweep.num_shards, or hydra.launcher.n_jobs with joblib)"
        )
    share = cores // jobs
    per_process = threads or max(1, share // (workers or share))
    processes = workers or max(1, share // per_process)
    if jobs * processes * per_process <= cores:
        return processes, per_process
    at_once = f"{jobs} job{'s' * (jobs > 1)} at once > {cores} usable cores"
    if workers:
        raise ConfigError(
            f"sweep.workers: {workers} runs x {per_process} thread{'s' * (per_process > 1)} x {at_once}; "
            f"allowed: 0 (auto) to {share // per_process}"
        )
    raise ConfigError(f"train.threads: {threads} threads x {at_once}; allowed: 0 (auto) to {share}")


def place_on_gpu(shard: int, device: str) -> int | None:
    """Make the shard's GPU the current one (and return its index; None when training on cpu): shard
    k takes visible GPU k mod count, so K shards run one per GPU on a node with K GPUs, or several per
    GPU with more shards; under SLURM each job sees only its own GPU, index 0."""
    import torch

    if device == "cpu" or not torch.cuda.is_available():
        return None
    index = shard % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return index


def job_configs(config: DictConfig) -> list[Config]:
    """The typed config of every job of a multirun, from its launching config: Hydra's basic sweeper's
    expansion of `hydra.sweeper.params` and the command line, composed as the launchers compose it."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not config.hydra.sweeper._target_.endswith(".BasicSweeper"):
        raise ConfigError(f"hydra.sweeper: {config.hydra.sweeper._target_} is not supported; allowed: basic")
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.params or {}).items()]
    # the command line as typed: an override like sweep.dir=runs/lr${train.lr} resolves in each job
    task = OmegaConf.to_container(config.hydra.overrides, resolve=False)["task"]
    overrides = OverridesParser.create().parse_overrides([*params, *task])
    loader = GlobalHydra.instance().config_loader()
    configs = []
    for job in BasicSweeper.split_arguments(overrides, None)[0]:
        job_cfg = loader.load_sweep_config(config, list(job))
        with open_dict(job_cfg):
            del job_cfg["hydra"]
        configs.append(OmegaConf.to_object(job_cfg))
    return configs
