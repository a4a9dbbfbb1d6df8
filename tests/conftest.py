"""Shared fixtures: configs composed from the real configs/ tree (harness.compose: `compose_config`,
`CONFIG_DIR`), and a quiet offline environment."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.compose import CONFIG_DIR, compose_config  # noqa: F401 (the tests import them from here)
from harness.config import Config

ROOT = Path(__file__).resolve().parent.parent


def default_sigint() -> None:
    """A child's preexec_fn: Ctrl-C as at a terminal. A shell starts its background jobs with SIGINT
    ignored and their children inherit that (Python then installs no KeyboardInterrupt handler), so a
    test suite launched with `&` would see a sweep shrug off the SIGINT a Ctrl-C test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_module(module: str, *args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m MODULE ARGS` in a fresh process, as a user would, from `cwd`."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def load_script(name: str):
    """scripts/NAME.py as a module, so tests can call its pure functions."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_close(a: object, b: object, rel: float = 1e-2, path: str = "") -> None:
    """Equal structure, equal strings and flags, numbers within `rel` (results of runs trained in other
    processes or with other thread counts agree to float rounding, not bit for bit; fits of losses equal
    to ~1e-6 agree to well within the default 1%)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], rel, f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, rel, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert b == pytest.approx(a, rel=rel, abs=1e-9, nan_ok=True), path
    else:
        assert a == b, path


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # nor the machine's own `wandb login`
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, "")  # so that teardown removes what a test's W&B runs set ...
        monkeypatch.delenv(var)  # ... and no later test's sweep takes it for the user's
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def smoke_cfg(tmp_path: Path) -> Config:
    return compose_config("sweep=smoke", "logger=off", f"sweep.dir={tmp_path / 'sweep'}")


class Crash(RuntimeError):
    """A simulated kill inside a training run."""


@contextmanager
def crash_at(source, step: int) -> Iterator[None]:
    """Within the block, the source raises Crash when asked for batch `step` (a run dies there)."""
    real = source.train_batch

    def batch(at: int, batch_size: int, seed: int):
        if at == step:
            raise Crash
        return real(at, batch_size, seed)

    source.train_batch = batch
    try:
        yield
    finally:
        del source.train_batch  # the class's method again
