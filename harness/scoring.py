"""Ability scores at each eval: what the trainer computes and writes (`<run>/abilities.json`).

Two kinds of exact-answer questions, both scored from log-probabilities the trainer computes anyway:

- single-token questions on the validation set (`Questions`, one ability per synthetic skill, or the
  induction probe on real text): an ability's *accuracy* is the share of its questions whose answer is
  the model's top-1 token, its *log-prob* the mean log-probability of the answer (`group_scores`). Only
  abilities asked about at least MIN_ITEMS distinct items count towards the share learned (accuracy
  >= LEARNED): a rare skill seen in one validation sequence may repeat two chain states thirty times.
- multi-token tasks on dedicated prompts (`Tasks`): each prompt asks for an M-token answer path; per
  prompt the trainer keeps which answer tokens are the model's top-1 given the true prefix (teacher
  forcing) and their log-probabilities (`score_tasks`). All M correct means greedy decoding writes the
  path, so the exact match of its first m tokens, the per-token accuracy and the summed log-prob follow
  for every m (harness.report.abilities).

`ScoreLog` keeps both per eval. Pure numpy: the model's forward pass is the trainer's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness import store

if TYPE_CHECKING:
    from harness.data.source import Questions, Tasks

FILE = store.ABILITIES
LEARNED = 0.8  # accuracy at which an ability counts as learned
MIN_ITEMS = 8  # abilities asked about fewer distinct items in the validation set are not scored
MAX_NAMED = 8  # a source with at most this many abilities gets per-ability curves in metrics and W&B
LOGP_DIGITS = 4  # task log-probs are stored rounded (nats)


@dataclass(frozen=True)
class Scores:
    """One eval's result per ability (index = ability; nan where an ability has no questions)."""

    acc: np.ndarray  # share of its questions whose answer is the model's top-1 token
    logp: np.ndarray  # mean log-probability of the answer, nats
    n: np.ndarray  # questions
    items: np.ndarray  # distinct items its questions ask about


def group_scores(questions: Questions, answer_logp: np.ndarray, correct: np.ndarray) -> Scores:
    """Per-ability accuracy and mean answer log-prob from the per-question results."""
    g, size = questions.group, len(questions.names)
    n = np.bincount(g, minlength=size)
    pairs = np.unique(np.stack([g, questions.item]), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(g, weights=correct.astype(np.float64), minlength=size) / n
        logp = np.bincount(g, weights=answer_logp.astype(np.float64), minlength=size) / n
    return Scores(acc=acc, logp=logp, n=n, items=np.bincount(pairs[0], minlength=size))


def learned_fraction(acc: np.ndarray, items: np.ndarray) -> float | None:
    """Share of the scorable abilities (>= MIN_ITEMS distinct items) with accuracy >= LEARNED."""
    scorable = np.asarray(items) >= MIN_ITEMS
    return float(np.mean(np.asarray(acc)[scorable] >= LEARNED)) if scorable.any() else None


def eval_metrics(scores: Scores, names: tuple[str, ...]) -> dict[str, float]:
    """Scalars for an eval row (metrics.jsonl, W&B): accuracy and log-prob over all questions, the
    share of abilities learned, and each ability's own values when there are at most MAX_NAMED."""
    asked = scores.n > 0
    if not asked.any():
        return {}
    w = scores.n[asked] / scores.n.sum()
    out = {
        "val/answer_acc": float(w @ scores.acc[asked]),
        "val/answer_logp": float(w @ scores.logp[asked]),
    }
    learned = learned_fraction(scores.acc, scores.items)
    if learned is not None:
        out["val/abilities_learned"] = learned
    if len(names) <= MAX_NAMED:
        for g in np.flatnonzero(asked):
            out[f"val/{names[g]}_acc"] = float(scores.acc[g])
            out[f"val/{names[g]}_logp"] = float(scores.logp[g])
    return out


@dataclass(frozen=True)
class TaskScores:
    """One eval's answers to the multi-token tasks, per prompt and answer token (teacher forcing)."""

    correct: np.ndarray  # [P, M] bool: the answer token is the model's top-1 given the true prefix
    logp: np.ndarray  # [P, M] its log-probability, nats


def score_tasks(tasks: Tasks, answer_logp: np.ndarray, correct: np.ndarray) -> TaskScores:
    """Per-prompt scores from the per-question results of `tasks.questions` (prompt-major order)."""
    shape = (tasks.group.size, tasks.answer_len)
    return TaskScores(np.asarray(correct, bool).reshape(shape), np.asarray(answer_logp).reshape(shape))


def task_metrics(tasks: Tasks, scores: TaskScores) -> dict[str, float]:
    """Scalars for an eval row: exact match of the whole M-token answer and the mean per-token
    log-prob over every task prompt."""
    return {
        f"val/task_exact{tasks.answer_len}": float(scores.correct.all(axis=1).mean()),
        "val/task_logp": float(scores.logp.mean()),
    }


def pack_bits(correct: np.ndarray) -> list[int]:
    """Each prompt's correct answer tokens as one integer (bit t: token t)."""
    return (correct.astype(np.int64) << np.arange(correct.shape[1])).sum(axis=1).tolist()


def unpack_bits(bits: list[int], answer_len: int) -> np.ndarray:
    """The inverse of ScoreLog's packing: [P, answer_len] bool."""
    return (np.asarray(bits, dtype=np.int64)[:, None] >> np.arange(answer_len)) & 1 == 1


class ScoreLog:
    """A run's ability scores at each eval, rewritten atomically to `path` after every eval.

    Only abilities with questions are stored. A resumed run keeps the evals up to its checkpoint
    (`keep_until`, a step); a fresh one (0) drops what an earlier attempt left.
    """

    def __init__(self, path: Path, questions: Questions, keep_until: int, tasks: Tasks | None = None) -> None:
        self.path = path
        self.questions = questions
        self.tasks = tasks
        old = store.read_json(path) or {}
        self.evals = [e for e in old.get("evals", []) if e.get("step", math.inf) <= keep_until]

    def add(self, at: dict, scores: Scores, task_scores: TaskScores | None = None) -> None:
        """Append one eval (`at`: step, tokens, flops, ...) and rewrite the file."""
        asked = np.flatnonzero(scores.n)
        entry = {**at, "acc": scores.acc[asked].tolist(), "logp": scores.logp[asked].tolist()}
        if task_scores is not None:
            entry["tasks"] = {
                "correct": pack_bits(task_scores.correct),
                "logp": np.round(task_scores.logp, LOGP_DIGITS).tolist(),
            }
        self.evals.append(entry)
        freq = self.questions.frequency
        record = {
            "description": self.questions.description,
            "names": [self.questions.names[g] for g in asked],
            "frequency": None if freq is None else freq[asked].tolist(),
            "questions": scores.n[asked].tolist(),
            "items": scores.items[asked].tolist(),
            "evals": self.evals,
        }
        if self.tasks is not None:
            t = self.tasks
            record["tasks"] = {
                "description": t.description,
                "names": list(t.names),
                "frequency": None if t.frequency is None else t.frequency.tolist(),
                "group": t.group.tolist(),
                "answer_len": t.answer_len,
                "vocab_size": t.vocab_size,
                "bayes_logp": np.round(t.bayes_logp, LOGP_DIGITS).tolist(),
            }
        store.write_atomic(self.path, json.dumps(record) + "\n")
