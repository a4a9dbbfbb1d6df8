"""Train one run: the LR schedule, the loop, evals, checkpoints -> a result row.

How the device computes (precision, compile, host batches, when the loss is read) is
`harness.device`'s; this loop is the same on cpu and cuda.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import store
from harness.data import TokenSource, epochs_over
from harness.device import Device
from harness.evaluate import Evaluator, evaluators_for
from harness.flops import mfu
from harness.models.build import build_model
from harness.plan import RunSpec
from harness.schedule import lr_at
from harness.tracking import RunLogger

ADAM_EPS = 1e-8  # AdamW's epsilon (PyTorch's default)
TRAIN_LOG_POINTS = 100  # training-loss points a run logs (to W&B) besides its evals: every ~1% of its steps


def eval_steps(steps: int, evals: int) -> list[int]:
    """Steps (1-based counts) after which to evaluate: evenly spaced, the last at the end."""
    return sorted({max(1, round(steps * i / evals)) for i in range(1, evals + 1)})


def make_optimizer(model: torch.nn.Module, spec: RunSpec) -> torch.optim.Optimizer:
    """AdamW (or SGD with momentum) with weight decay on matrices only (not norms or biases). AdamW is
    the fused kernel on cpu and cuda alike: on cpu it steps ~4x faster than the default per-tensor loop."""
    t = spec.train
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=spec.peak_lr, momentum=t.beta1)
    return torch.optim.AdamW(groups, lr=spec.peak_lr, betas=(t.beta1, t.beta2), eps=ADAM_EPS, fused=True)


def train_run(
    spec: RunSpec,
    source: TokenSource,
    run_path: Path,
    logger: RunLogger,
    dev: Device,
    progress: Callable[[int, float | None], None] | None = None,
) -> dict:
    """Train `spec` to its planned tokens (resuming from a checkpoint if one exists; a branch without
    one starts from its main run's state at its fork step, its metrics up to there copied).

    Returns the result row (see store.RESULT_COLUMNS): status 'done' or 'diverged'. Writes eval rows
    (each evaluator's metrics, and its per-item scores) to metrics.jsonl and logs them with a point of
    the training-loss curve every ~1% of the steps; the caller writes result.json. `progress(steps done,
    loss)` is called after every step (harness.progress.RunProgress); the loss is None where reading it
    would sync the host (cuda, between evals). One loop read top to bottom, as nanoGPT's is: its parts that
    stand alone (evals, checkpoints, the result row) are functions of their own.
    """
    t = spec.train
    seed = t.seed
    run_path.mkdir(parents=True, exist_ok=True)
    ckpt = resume_checkpoint(spec, run_path)
    if ckpt is None and spec.parent is not None:
        main_path = run_path.with_name(spec.parent.dirname)
        ckpt = load_checkpoint(store.fork_path(main_path, spec.fork_step))
        if ckpt is None:
            return _branch_of_diverged(spec, source, main_path)
        ckpt["wall_s"] = 0.0  # a branch's own time is its cooldown's
        store.write_metrics(run_path, store.read_metrics(main_path, max_step=spec.fork_step))
        for row in store.read_metrics(run_path):  # its curve up to the fork is its main run's
            logger.log(store.scalars(row), step=row["step"])
    model = build_model(spec.shape, seed=seed).to(dev.torch)
    opt = make_optimizer(model, spec)
    step_fn = dev.compiled(model)  # evals call the eager model: their batch shape would recompile
    evaluators = evaluators_for(source, dev)
    diverge_at = 2 * math.log(spec.shape.vocab_size)  # twice a uniform guess's loss: diverged
    evals = eval_steps(spec.steps, t.evals)
    log_every = max(1, spec.steps // TRAIN_LOG_POINTS)
    tokens_per_step = spec.batch_size * spec.shape.seq_len
    batches = dev.batches(source, spec.batch_size, seed)

    start, wall_before = 0, 0.0
    ckpt_path = run_path / store.CHECKPOINT
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start, wall_before = ckpt["step"], ckpt["wall_s"]
        store.truncate_metrics(run_path, start)
    elif (run_path / store.METRICS).exists():
        (run_path / store.METRICS).unlink()

    loss_sum = torch.zeros((), device=dev.torch)  # training loss summed since the last log point
    n_since, steps_since_eval, t_since = 0, 0, time.perf_counter()
    t0 = time.perf_counter()
    status, diverged_step, train_loss, val_loss, val_loss_se = "done", None, math.nan, math.nan, math.nan
    for step in range(start, spec.steps):
        lr = lr_at(step, steps=spec.schedule_steps, warmup=spec.warmup_steps, peak=spec.peak_lr, cfg=t)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batches(step)
        with dev.autocast():
            logits = step_fn(input_ids=x).logits
        if t.objective == "last_token":  # each window's last target only: the same compute, less signal
            logits, y = logits[:, -1:], y[:, -1:]
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        loss.backward()
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_sum += loss.detach()
        n_since += 1
        steps_since_eval += 1
        done = step + 1
        value = None
        if dev.check_every_step or done in evals:
            value = loss.item()
            if not math.isfinite(value) or value > diverge_at:
                status, diverged_step = "diverged", done
                break
        if progress is not None:
            progress(done, value)
        if done in evals or done % log_every == 0:  # a point of the training-loss curve
            train_loss = float(loss_sum) / n_since
            tokens = done * tokens_per_step
            flops = tokens * spec.flops_per_token
            point = {"step": done, "tokens": tokens, "flops": flops, "train/loss": train_loss, "lr": lr}
            loss_sum.zero_()
            n_since = 0
            if done in evals:
                tps = steps_since_eval * tokens_per_step / (time.perf_counter() - t_since)
                point, scores = _eval(model, evaluators, spec, dev, point, tps)
                val_loss, val_loss_se = point["val/loss"], point["val/loss_se"]
                store.append_metrics(run_path, {**point, "scores": scores} if scores else point)
                steps_since_eval, t_since = 0, time.perf_counter()
            logger.log(point, step=done)
        if done in spec.forks:  # a main run's state where branches start (also a resume point)
            save_checkpoint(
                store.fork_path(run_path, done), model, opt, done, wall_before + time.perf_counter() - t0
            )
        elif t.checkpoint_every and done < spec.steps and done % t.checkpoint_every == 0:
            save_checkpoint(ckpt_path, model, opt, done, wall_before + time.perf_counter() - t0)

    wall = wall_before + time.perf_counter() - t0
    return _result(spec, source, status, val_loss, train_loss, wall, diverged_step, val_loss_se)


def _eval(
    model: torch.nn.Module, evaluators: list[Evaluator], spec: RunSpec, dev: Device, point: dict, tps: float
) -> tuple[dict, dict]:
    """The eval at `point` (step, tokens, flops, train/loss, lr): its metrics row (units: docs/results.md)
    from every evaluator, and the per-item scores they return to keep with it."""
    row = {
        **point,
        "flops_6n": point["tokens"] * spec.flops_per_token_6n,
        "perf/tokens_per_s": tps,
    }
    util = mfu(tps * spec.flops_per_token, dev.peak_flops)
    if util is not None:
        row["perf/mfu"] = util
    scores = {}
    for evaluator in evaluators:
        measured = evaluator(model)
        row.update(measured.metrics)
        scores.update(measured.scores)
    return row, scores


def _result(
    spec: RunSpec,
    source: TokenSource,
    status: str,
    val_loss: float | None,
    train_loss: float | None,
    wall: float,
    diverged_step: int | None,
    val_loss_se: float | None = None,
) -> dict:
    """The result row; throughput counts the steps this run trained itself (a branch: its cooldown)."""
    steps_done = max(0, (diverged_step or spec.steps) - spec.fork_step)
    tokens_done = steps_done * spec.batch_size * spec.shape.seq_len
    return {
        **spec.planned_row(),
        "status": status,
        "val_loss": val_loss if status == "done" else None,
        "val_loss_se": val_loss_se if status == "done" else None,
        "train_loss": train_loss if status == "done" else None,
        "epochs": epochs_over(source, spec.tokens),
        "wall_s": wall,
        "tokens_per_s": tokens_done / wall if wall > 0 else None,
        "diverged_step": diverged_step,
    }


def _branch_of_diverged(spec: RunSpec, source: TokenSource, main_path: Path) -> dict:
    """A branch whose main run diverged before the fork: the same steps, so it diverges there too."""
    main = store.read_result(main_path)
    if main is None or main["status"] != "diverged" or main["diverged_step"] > spec.fork_step:
        raise RuntimeError(
            f"branch {spec.run_id}: no state of its main run {main_path.name} at step {spec.fork_step}; "
            "train the main run first (delete its result.json to train it again)"
        )
    return _result(spec, source, "diverged", None, None, 0.0, main["diverged_step"])


def save_checkpoint(
    path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, wall_s: float
) -> None:
    """Resumable state after `step` steps. Batches and the LR are functions of the step, so the
    model, the optimiser and the step are the whole state (no RNG is drawn during training)."""
    tmp = path.with_suffix(".tmp")
    torch.save(
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "wall_s": wall_s}, tmp
    )
    os.replace(tmp, path)


def resume_checkpoint(spec: RunSpec, run_path: Path) -> dict | None:
    """The run's latest saved state: its checkpoint or, for a main run, a later fork state; None if none."""
    ckpt = load_checkpoint(run_path / store.CHECKPOINT)
    saved = [step for step in spec.forks if store.fork_path(run_path, step).exists()]
    if saved and (ckpt is None or max(saved) > ckpt["step"]):
        ckpt = load_checkpoint(store.fork_path(run_path, max(saved))) or ckpt
    return ckpt


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint, or None when absent; a corrupt one is reported and discarded."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or corrupted file: start the run over
        print(f"warning: discarding unreadable checkpoint {path}: {exc}")
        path.unlink(missing_ok=True)
        return None
