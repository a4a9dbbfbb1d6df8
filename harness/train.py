"""Train one run: the LR schedule, the loop, evals, checkpoints -> a result row.

How the device computes (precision, compile, host batches, when the loss is read) is
`harness.device`'s; this loop is the same on cpu and cuda.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from harness import store
from harness.data import Questions, TokenSource, ValWeights, epochs_over, val_loss_with_se
from harness.device import Device
from harness.flops import mfu
from harness.models.build import build_model
from harness.plan import RunSpec
from harness.schedule import lr_at
from harness.scoring import ScoreLog, eval_metrics, group_scores, score_tasks, task_metrics
from harness.tracking import RunLogger


def eval_steps(steps: int, evals: int) -> list[int]:
    """Steps (1-based counts) after which to evaluate: evenly spaced, the last at the end."""
    return sorted({max(1, round(steps * i / evals)) for i in range(1, evals + 1)})


@dataclass(frozen=True)
class Evaluation:
    """One pass over the held-out set."""

    loss: float  # next-token cross-entropy, nats/token, weighted as the source's val_weights say
    loss_se: float  # its standard error (harness.data.validation)
    answer_logp: np.ndarray  # [Q] log-probability the model gives each question's answer
    answer_correct: np.ndarray  # [Q] bool: the answer is the model's top-1 token


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    val: tuple[torch.Tensor, torch.Tensor],
    dev: Device,
    questions: Questions | None = None,
    chunk: int = 64,
    *,
    weights: ValWeights | None = None,
) -> Evaluation:
    """Next-token cross-entropy (nats/token) on the fixed held-out set, each sequence weighted as
    `weights` says (None: equally, `ValWeights.systematic`), with its standard error; and the model's
    answers to `questions` read off the same log-probabilities (a gather and an argmax per chunk)."""
    model.eval()
    per_sequence = []
    x_all, y_all = val
    seq_len = y_all.shape[1]
    none = np.empty(0, dtype=np.int64)
    pos, answer = (none, none) if questions is None else (questions.pos, questions.answer)
    pos_t, answer_t = (torch.from_numpy(a).to(dev.torch) for a in (pos, answer))
    bounds = np.searchsorted(pos, np.arange(0, len(x_all) + chunk, chunk) * seq_len)  # questions per chunk
    answer_logp, correct = [], []
    for k, i in enumerate(range(0, len(x_all), chunk)):
        x, y = x_all[i : i + chunk], y_all[i : i + chunk]
        with dev.autocast():
            logits = model(input_ids=x).logits
        logp = logits.float().log_softmax(-1).flatten(0, 1)
        per_sequence.append(-logp.gather(1, y.reshape(-1, 1)).view(len(y), seq_len).double().mean(1))
        rows = logp[pos_t[bounds[k] : bounds[k + 1]] - i * seq_len]
        answer = answer_t[bounds[k] : bounds[k + 1]]
        answer_logp.append(rows.gather(1, answer[:, None])[:, 0])
        correct.append(rows.argmax(-1) == answer)
    model.train()
    weights = weights or ValWeights.systematic(len(x_all))
    loss, se = val_loss_with_se(torch.cat(per_sequence).cpu().numpy(), weights)
    return Evaluation(
        loss=loss,
        loss_se=se,
        answer_logp=torch.cat(answer_logp).cpu().numpy(),
        answer_correct=torch.cat(correct).cpu().numpy(),
    )


def make_optimizer(model: torch.nn.Module, spec: RunSpec) -> torch.optim.Optimizer:
    """AdamW (or SGD with momentum) with weight decay on matrices only (not norms or biases). AdamW is
    the fused kernel on cpu and cuda alike: on cpu it steps ~4x faster than the default per-tensor loop."""
    t = spec.train
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=spec.peak_lr, momentum=t.beta1)
    return torch.optim.AdamW(groups, lr=spec.peak_lr, betas=(t.beta1, t.beta2), eps=t.eps, fused=True)


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
    to metrics.jsonl and logs them; the caller writes result.json. `progress(steps done, loss)` is
    called after every step (harness.progress.RunProgress); the loss is None where reading it would
    sync the host (cuda, between evals). One loop read top to bottom, as nanoGPT's is: its parts that
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
            logger.log(row, step=row["step"])
    model = build_model(spec.shape, seed=seed).to(dev.torch)
    opt = make_optimizer(model, spec)
    step_fn = dev.compiled(model)  # evals call the eager model: their batch shape would recompile
    val = tuple(dev.tensor(a) for a in source.val_set())
    tasks = source.val_tasks  # multi-token tasks on prompts of their own, scored at each eval too
    task_set = None if tasks is None else tuple(dev.tensor(a) for a in (tasks.x, tasks.y))
    diverge_at = t.diverge_loss or 2 * math.log(spec.shape.vocab_size)
    evals = eval_steps(spec.steps, t.evals)
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

    ability_log = ScoreLog(run_path / store.ABILITIES, source.val_questions, keep_until=start, tasks=tasks)
    loss_sum = torch.zeros((), device=dev.torch)
    n_since, t_since = 0, time.perf_counter()
    t0 = time.perf_counter()
    status, diverged_step, train_loss, val_loss, val_loss_se = "done", None, math.nan, math.nan, math.nan
    for step in range(start, spec.steps):
        lr = lr_at(step, steps=spec.schedule_steps, warmup=spec.warmup_steps, peak=spec.peak_lr, cfg=t)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batches(step)
        with dev.autocast():
            logits = step_fn(input_ids=x).logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        loss.backward()
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_sum += loss.detach()
        n_since += 1
        done = step + 1
        value = None
        if dev.check_every_step or done in evals:
            value = loss.item()
            if not math.isfinite(value) or value > diverge_at:
                status, diverged_step = "diverged", done
                break
        if progress is not None:
            progress(done, value)
        if done in evals:
            tps = n_since * tokens_per_step / (time.perf_counter() - t_since)
            row, scores, task_scores = _eval(
                model, spec, source, dev, (val, task_set), done, lr, float(loss_sum) / n_since, tps
            )
            train_loss, val_loss, val_loss_se = row["train/loss"], row["val/loss"], row["val/loss_se"]
            store.append_metrics(run_path, row)
            ability_log.add({k: row[k] for k in ("step", "tokens", "flops", "flops_6n")}, scores, task_scores)
            logger.log(row, step=done)
            loss_sum.zero_()
            n_since, t_since = 0, time.perf_counter()
        if done in spec.forks:  # a main run's state where branches start (also a resume point)
            save_checkpoint(
                store.fork_path(run_path, done), model, opt, done, wall_before + time.perf_counter() - t0
            )
        elif t.checkpoint_every and done < spec.steps and done % t.checkpoint_every == 0:
            save_checkpoint(ckpt_path, model, opt, done, wall_before + time.perf_counter() - t0)

    wall = wall_before + time.perf_counter() - t0
    return _result(spec, source, status, val_loss, train_loss, wall, diverged_step, val_loss_se)


def _eval(
    model: torch.nn.Module,
    spec: RunSpec,
    source: TokenSource,
    dev: Device,
    sets: tuple,
    done: int,
    lr: float,
    train_loss: float,
    tps: float,
) -> tuple[dict, dict, dict | None]:
    """The eval at step `done`: its metrics row (units: docs/results.md), the ability scores of the
    validation questions and the task scores (None without tasks). `sets`: the device's (val, task) sets."""
    (val, task_set), questions, tasks = sets, source.val_questions, source.val_tasks
    tokens = done * spec.batch_size * spec.shape.seq_len
    evaluation = evaluate(model, val, dev, questions, weights=source.val_weights)
    scores = group_scores(questions, evaluation.answer_logp, evaluation.answer_correct)
    row = {
        "step": done,
        "tokens": tokens,
        "flops": tokens * spec.flops_per_token,
        "flops_6n": tokens * spec.flops_per_token_6n,
        "train/loss": train_loss,
        "val/loss": evaluation.loss,
        "val/loss_se": evaluation.loss_se,
        "lr": lr,
        "perf/tokens_per_s": tps,
    }
    util = mfu(tps * spec.flops_per_token, dev.peak_flops)
    if util is not None:
        row["perf/mfu"] = util
    row.update(eval_metrics(scores, questions.names))
    task_scores = None
    if tasks is not None:
        answered = evaluate(model, task_set, dev, tasks.questions)
        task_scores = score_tasks(tasks, answered.answer_logp, answered.answer_correct)
        row.update(task_metrics(tasks, task_scores))
    return row, scores, task_scores


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
