"""Shared fixtures: configs composed from the real configs/ tree, and a quiet offline environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from harness.config import Config, register_configs

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "configs"


def run_module(module: str, *args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m MODULE ARGS` in a fresh process, as a user would, from `cwd`."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def same_numbers(got: object, expected: object, rel: float = 1e-5) -> bool:
    """Whether two JSON-like values are equal, floats to `rel` (runs trained in other processes)."""
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same_numbers(got[k], expected[k], rel) for k in got)
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(
            same_numbers(a, b, rel) for a, b in zip(got, expected, strict=True)
        )
    if isinstance(got, float) and isinstance(expected, float):
        return got == pytest.approx(expected, rel=rel, abs=1e-12, nan_ok=True)
    return got == expected


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))


def compose_config(*overrides: str) -> Config:
    """The typed config `python -m harness.sweep OVERRIDES` would see."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        dcfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_object(dcfg)


@pytest.fixture
def smoke_cfg(tmp_path: Path) -> Config:
    return compose_config("sweep=smoke", "logger=off", f"sweep.dir={tmp_path / 'sweep'}")
