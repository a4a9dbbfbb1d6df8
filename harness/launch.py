"""A cluster's jobs: `python -m harness.sweep -m hydra/launcher=slurm sweep.num_shards=K` splits the
planned runs into K jobs (configs/config.yaml sweeps `sweep.shard` over range(K)) that Hydra's submitit
launcher submits; this module checks that shards only go to a cluster, puts each job on its GPU, and
reads every job's config back for the fit after them (harness.sweep.FitAfterJobs). On one machine the
sweep's own process pool is the scheduler (harness.execute).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from harness.config import Config, ConfigError

SUBMITIT_SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


def check_launcher(launcher: Mapping[str, Any] | None, choice: str | None) -> None:
    """ConfigError, before anything is written, for a launcher that would not do what was asked: one
    chosen without -m (`launcher` None: Hydra ignores launchers outside a multirun, so the sweep would
    train here), or SLURM's where there is no SLURM (submitit's own test: `srun` on the PATH).
    `choice`: the hydra/launcher option, `launcher`: the multirun's `hydra.launcher`."""
    if launcher is None:
        if choice not in (None, "basic"):
            raise ConfigError(
                f"hydra/launcher={choice}: a launcher runs the jobs of a multirun; add -m (and "
                "sweep.num_shards=K to split the sweep into K jobs), or drop it to train in this process"
            )
    elif launcher.get("_target_") == SUBMITIT_SLURM and shutil.which("srun") is None:
        raise ConfigError(
            f"hydra/launcher={choice}: no SLURM on this machine (no srun on the PATH); submit from the "
            "cluster's login node, or drop -m and the launcher to train here"
        )


def check_sharding(launcher: Mapping[str, Any] | None, num_shards: int) -> None:
    """ConfigError when a sweep would be split into shards that run on this machine: one machine trains
    through one scheduler, the sweep's process pool (`sweep.workers` runs at once, harness.execute);
    shards are the jobs of a cluster launcher (`launcher`: the multirun's `hydra.launcher`, None
    without -m)."""
    if num_shards > 1 and (launcher is None or launcher.get("_target_") != SUBMITIT_SLURM):
        raise ConfigError(
            f"sweep.num_shards: {num_shards} shards are jobs of a cluster (-m hydra/launcher=slurm); "
            "allowed here: 1 (on one machine sweep.workers sets the runs trained at once)"
        )


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
