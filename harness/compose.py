"""The configs `python -m harness.sweep OVERRIDES` would compose, for code that runs sweeps without its
command line (the claims report, the tests)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from harness.config import Config, register_configs

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def compose_raw(*overrides: str) -> DictConfig:
    """The composed config with Hydra's own section (`hydra.sweeper.params`, `hydra.callbacks`)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def compose_config(*overrides: str) -> Config:
    """The typed config of `python -m harness.sweep OVERRIDES` (one job of it, under -m)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        dcfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_object(dcfg)
