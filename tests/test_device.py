"""harness.device: what a run computes with on cpu, its cuda twin (with torch's cuda queries stubbed),
settings that cannot be honoured, and torch.compile + bf16 autocast training every family on cpu."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.config import ConfigError, TrainConfig
from harness.data import make_source
from harness.device import Device, resolve_device
from harness.plan import check_config, plan_runs
from harness.tracking.wandb_run import NullLogger
from harness.train import train_run
from tests.conftest import compose_config


@pytest.fixture
def tf32_restored():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch, tf32_restored) -> dict:
    """torch's cuda queries answering as an H100 with bf16 (flip `bf16` to take it away)."""
    gpu = {"bf16": True}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: gpu["bf16"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    return gpu


def test_cpu_defaults_to_fp32_eager_and_honours_bf16_and_compile() -> None:
    assert resolve_device(TrainConfig(device="cpu"), 1) == Device("cpu", "fp32", False, None)
    assert torch.get_num_threads() == 1
    asked = TrainConfig(device="auto", precision="bf16", compile=True)
    assert resolve_device(asked, 1) == Device("cpu", "bf16", True, None)


def test_cuda_twin_resolves_bf16_tf32_and_the_peak(fake_gpu: dict) -> None:
    dev = resolve_device(TrainConfig(), 0)
    assert dev == Device("cuda", "bf16", False, 989.4e12)
    assert torch.backends.cuda.matmul.allow_tf32 and not dev.check_every_step
    fake_gpu["bf16"] = False  # a pre-Ampere GPU: auto falls back to fp32, an explicit bf16 is refused
    assert resolve_device(TrainConfig(), 0).precision == "fp32"
    with pytest.raises(ConfigError, match=r"^train.precision: bf16, but NVIDIA H100 80GB HBM3 has no bf16"):
        resolve_device(TrainConfig(precision="bf16"), 0)


def test_settings_that_cannot_be_honoured_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^train.device: cuda, but torch sees no CUDA device"):
            resolve_device(TrainConfig(device="cuda"), 1)
    monkeypatch.setattr("shutil.which", lambda name: None)  # no C++ compiler for inductor
    with pytest.raises(ConfigError) as err:
        resolve_device(TrainConfig(device="cpu", compile=True), 1)
    assert str(err.value).startswith("train.compile: torch.compile on cpu needs a C++ compiler")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="^train.compile: torch.compile does not compile model.family=lstm"):
        check_config(compose_config("model=lstm", "train.compile=true"))


def test_cpu_batches_are_the_host_arrays_and_autocast_follows_the_precision() -> None:
    arr = np.arange(6, dtype=np.int64).reshape(2, 3)
    fp32, bf16 = Device("cpu", "fp32", False, None), Device("cpu", "bf16", False, None)
    batch = fp32.tensor(arr)
    assert batch.data_ptr() == arr.ctypes.data and fp32.check_every_step  # no copy, no sync to save
    a = torch.ones(4, 4)
    for dev, dtype in ((fp32, torch.float32), (bf16, torch.bfloat16)):
        with dev.autocast():
            assert (a @ a).dtype == dtype


def _train(tmp_path: Path, *overrides: str) -> dict:
    """Three steps of one width-16 run on cpu, with W&B off; the result row and the spec trained."""
    cfg = compose_config(
        "sweep=smoke",
        "sweep.widths=[16]",
        "sweep.tokens=[3072]",
        "train.device=cpu",
        "train.evals=1",
        *overrides,
    )
    check_config(cfg)
    source = make_source(cfg.data)
    dev = resolve_device(cfg.train, 1)
    (spec,) = plan_runs(
        cfg, vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision=dev.precision
    )
    assert spec.steps == 3 and spec.precision == dev.precision
    return train_run(spec, source, tmp_path / dev.precision, NullLogger(), dev)


@pytest.mark.slow  # inductor compiles each family's forward and backward: ~10-40 s each on 2 cores
@pytest.mark.parametrize("family", ["llama", "gpt2", "neox", "lstm"])
def test_compile_and_bf16_train_every_family_on_cpu(tmp_path: Path, family: str) -> None:
    from torch._dynamo.utils import counters

    fp32 = _train(tmp_path, f"model={family}")
    counters.clear()
    compile_ = "train.compile=false" if family == "lstm" else "train.compile=true"  # refused for lstm above
    bf16 = _train(tmp_path, f"model={family}", "train.precision=bf16", compile_)
    assert bf16["status"] == "done" and math.isfinite(bf16["val_loss"])
    # bf16 matmuls change the numbers, by bf16's rounding and no more
    assert bf16["val_loss"] != fp32["val_loss"]
    assert bf16["val_loss"] == pytest.approx(fp32["val_loss"], rel=1e-2)
    if family != "lstm":  # dynamo compiled the model in one graph, without breaks
        assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
