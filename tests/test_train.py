"""One run: determinism on CPU, divergence detection, resume from a checkpoint."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch.nn.functional as F

import harness.train as train
from harness.data import make_source
from harness.device import resolve_device
from harness.plan import plan_runs
from harness.tracking.wandb_run import NullLogger
from harness.train import eval_steps, train_run
from tests.conftest import Crash, compose_config, crash_at


def _setup(*overrides: str):
    cfg = compose_config(
        "sweep=smoke", "sweep.widths=[16]", "sweep.tokens=[16384]", "train.device=cpu", *overrides
    )
    source = make_source(cfg.data)
    (spec,) = plan_runs(
        cfg, vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision="fp32"
    )
    return spec, source, resolve_device(cfg.train, 2)


def test_eval_steps_end_at_the_last_step() -> None:
    assert eval_steps(16, 3) == [5, 11, 16]
    assert eval_steps(2, 5) == [1, 2]


def test_same_config_and_seed_give_the_same_losses(tmp_path: Path) -> None:
    spec, source, dev = _setup()
    a = train_run(spec, source, tmp_path / "a", NullLogger(), dev)
    b = train_run(spec, source, tmp_path / "b", NullLogger(), dev)
    assert a["status"] == b["status"] == "done"
    assert a["val_loss"] == b["val_loss"]
    assert a["val_loss"] < math.log(spec.shape.vocab_size)  # it learned something
    rows = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == spec.train.evals


def test_nan_loss_marks_the_run_diverged_with_its_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, source, dev = _setup()
    calls = {"n": 0}

    def poisoned(logits, target, **kw):
        calls["n"] += 1
        loss = F.cross_entropy(logits, target, **kw)
        return loss * float("nan") if calls["n"] == 4 and logits.requires_grad else loss

    monkeypatch.setattr(train, "F", SimpleNamespace(cross_entropy=poisoned))
    result = train_run(spec, source, tmp_path / "run", NullLogger(), dev)
    assert result["status"] == "diverged"
    assert result["diverged_step"] == 4
    assert result["val_loss"] is None


def test_killed_run_resumes_from_checkpoint_to_the_same_loss(tmp_path: Path) -> None:
    spec, source, dev = _setup("train.checkpoint_every=5")
    reference = train_run(spec, source, tmp_path / "ref", NullLogger(), dev)

    with pytest.raises(Crash), crash_at(source, 12):
        train_run(spec, source, tmp_path / "run", NullLogger(), dev)
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    resumed = train_run(spec, source, tmp_path / "run", NullLogger(), dev)
    assert resumed["val_loss"] == pytest.approx(reference["val_loss"], abs=1e-6)
    steps = [r for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == spec.train.evals  # no eval row logged twice


def test_corrupt_checkpoint_is_discarded_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec, source, dev = _setup("train.checkpoint_every=5")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    result = train_run(spec, source, tmp_path / "run", NullLogger(), dev)
    assert result["status"] == "done"
    assert "discarding unreadable checkpoint" in capsys.readouterr().out


def test_progress_hook_sees_every_step_with_its_loss(tmp_path: Path) -> None:
    spec, source, dev = _setup()
    seen: list[tuple[int, float | None]] = []
    result = train_run(
        spec, source, tmp_path / "run", NullLogger(), dev, progress=lambda s, l: seen.append((s, l))
    )
    assert [s for s, _ in seen] == list(range(1, spec.steps + 1))
    assert all(loss is not None and 0 < loss < 2 * math.log(spec.shape.vocab_size) for _, loss in seen)  # cpu
    assert result["status"] == "done"


def test_the_last_token_objective_predicts_one_target_per_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train.objective=last_token: each step's loss covers one target per window (batch x 1), not every
    position; the same steps and compute then learn less, judged on the same next-token validation."""
    targets = []

    def recording(logits, target, **kw):
        if logits.requires_grad:
            targets.append(target.numel())
        return F.cross_entropy(logits, target, **kw)

    monkeypatch.setattr(train, "F", SimpleNamespace(cross_entropy=recording))
    spec, source, dev = _setup("train.objective=last_token", "sweep.tokens=[65536]")
    last = train_run(spec, source, tmp_path / "last", NullLogger(), dev)
    assert set(targets) == {spec.batch_size} and len(targets) == spec.steps
    targets.clear()
    dense_spec, _, _ = _setup("sweep.tokens=[65536]")
    dense = train_run(dense_spec, source, tmp_path / "dense", NullLogger(), dev)
    assert set(targets) == {spec.batch_size * spec.shape.seq_len}
    assert (dense_spec.steps, dense_spec.batch_size) == (spec.steps, spec.batch_size)
    assert dense["val_loss"] < last["val_loss"]
