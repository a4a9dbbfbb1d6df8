"""Where and how a run computes: the one place where training on CUDA and on CPU differ.

|                    | cuda                                    | cpu                                  |
| ------------------ | --------------------------------------- | ------------------------------------ |
| precision auto     | bf16 autocast (fp32 without bf16 support) | fp32                               |
| precision bf16     | bf16 autocast                           | bf16 autocast                        |
| fp32 matmuls       | TF32 (~1e-3 relative)                   | fp32                                 |
| compile            | torch.compile (inductor, triton)        | torch.compile (inductor, a C++ compiler) |
| batches            | made there when the source can (synthetic) | made on the host, used in place   |
|                    | else pinned, copied without blocking    |                                      |
| loss check         | at evals only (.item() syncs the host)  | every step (free)                    |
| MFU                | against the device's bf16 peak          | not logged (no peak)                 |

A setting that cannot be honoured here (cuda without a GPU, bf16 on a GPU without it, compile without
its compiler) is a one-line ConfigError before anything trains, never silently dropped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from harness.config import ConfigError, TrainConfig
from harness.data import TokenSource
from harness.flops import peak_flops

Batch = tuple[torch.Tensor, torch.Tensor]  # inputs and next-token targets, [batch, seq_len] int64


@dataclass(frozen=True)
class Device:
    """Where and how a run computes (resolved: no 'auto' left)."""

    type: str  # cpu | cuda
    precision: str  # fp32 | bf16
    compile: bool
    peak_flops: float | None  # accelerator peak for MFU (None on cpu)

    @property
    def torch(self) -> torch.device:
        return torch.device(self.type)

    @property
    def check_every_step(self) -> bool:
        """Whether reading the loss each step is free (cpu) or would stall the device (cuda)."""
        return self.type == "cpu"

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when the precision is bf16, else nothing."""
        return torch.autocast(self.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def tensor(self, arr: np.ndarray) -> torch.Tensor:
        """A host array on this device: on cuda through pinned memory, copied without blocking."""
        t = torch.from_numpy(arr)
        return t.pin_memory().to(self.torch, non_blocking=True) if self.type == "cuda" else t

    def batches(self, source: TokenSource, batch_size: int, seed: int) -> Callable[[int], Batch]:
        """Batch `step` of the training stream, on this device. A GPU's are made on it when the source
        can (`device_batch`: the synthetic source's walk, the same tokens), so the host's batch making
        cannot starve it; otherwise, and on a cpu, made on the host (`train_batch`)."""
        if self.type == "cuda" and hasattr(source, "device_batch"):
            return lambda step: source.device_batch(step, batch_size, seed, self.torch)
        return lambda step: tuple(self.tensor(a) for a in source.train_batch(step, batch_size, seed))

    def compiled(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model to call in training steps: torch.compile'd when asked. Dynamo's caches are cleared
        first: a process training run after run of other sizes would otherwise hit its recompile limit
        and fall back to eager without a word (inductor's on-disk cache still serves a size seen before)."""
        if not self.compile:
            return model
        torch._dynamo.reset()
        return torch.compile(model)


def cuda_missing() -> str | None:
    """Why torch sees no CUDA device here, in one phrase; None when it sees one."""
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    return (
        f"torch {torch.__version__} (built for CUDA {torch.version.cuda}) sees no device: "
        "torch.cuda.is_available() is False (no GPU visible, or its driver fails)"
    )


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: taskset, SLURM and cgroups narrow it)."""
    return len(os.sched_getaffinity(0))


def cpu_layout(threads: int, workers: int, cores: int) -> tuple[int, int]:
    """(training processes at once, torch threads each) on `cores` usable cores: `train.threads` each
    (0: one; the cpu sizes are too small for a second thread to pay, and a one-thread process keeps its
    speed when other work shares the machine, where two threads made runs 6-65x slower:
    docs/performance.md), `sweep.workers` at once (0: as many as the cores hold). ConfigError when they
    would oversubscribe the cores."""
    each = threads or 1
    if each > cores:
        raise ConfigError(f"train.threads: {threads} > {cores} usable cores; allowed: 0 (one) to {cores}")
    processes = workers or cores // each
    if processes * each > cores:
        raise ConfigError(
            f"sweep.workers: {workers} runs x {each} thread{'s' * (each > 1)} > {cores} usable cores; "
            f"allowed: 0 (auto) to {cores // each}"
        )
    return processes, each


def resolve_device(cfg: TrainConfig, threads: int) -> Device:
    """The device `cfg.device` asks for (auto: cuda when present) with its precision and compile
    resolved, and this process's numerics set for it (torch threads on cpu, TF32 on cuda).
    ConfigError when a setting cannot be honoured here."""
    cuda = torch.cuda.is_available() if cfg.device == "auto" else cfg.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise ConfigError(
            "train.device: cuda, but torch sees no CUDA device (torch.cuda.is_available() is False); "
            "allowed here: auto or cpu"
        )
    kind = "cuda" if cuda else "cpu"
    if cfg.compile:
        _check_compile(kind)
    if cuda:
        bf16 = torch.cuda.is_bf16_supported()
        if cfg.precision == "bf16" and not bf16:
            raise ConfigError(
                f"train.precision: bf16, but {torch.cuda.get_device_name()} has no bf16; allowed: auto, fp32"
            )
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores (~1e-3 rel)
        torch.backends.cudnn.allow_tf32 = True
        precision = ("bf16" if bf16 else "fp32") if cfg.precision == "auto" else cfg.precision
        return Device("cuda", precision, cfg.compile, peak_flops(torch.cuda.get_device_name()))
    torch.set_num_threads(threads or usable_cores())  # 0: fitting alone, no training
    precision = "fp32" if cfg.precision == "auto" else cfg.precision
    return Device("cpu", precision, cfg.compile, None)


def _check_compile(kind: str) -> None:
    """ConfigError unless torch.compile can run on `kind` here: dynamo on this Python, and inductor's
    code generator (a C++ compiler on cpu, triton on cuda)."""
    if not torch._dynamo.is_dynamo_supported():
        raise ConfigError("train.compile: torch.compile does not support this Python/torch; set it false")
    if kind == "cpu":
        cxx = os.environ.get("CXX", "g++")
        if not (shutil.which(cxx) or shutil.which("c++")):
            raise ConfigError(
                f"train.compile: torch.compile on cpu needs a C++ compiler ({cxx} or c++ on PATH); "
                "install one or set train.compile=false"
            )
        return
    from torch.utils._triton import has_triton

    if not has_triton():
        raise ConfigError("train.compile: torch.compile on cuda needs triton; install it or set it false")
