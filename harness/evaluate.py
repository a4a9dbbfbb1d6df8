"""What a run measures at each eval: the data source's evaluators, behind one small interface.

An evaluator takes the model and returns a `Measurement`: scalars for the eval row (metrics.jsonl and
W&B; units in docs/results.md) and, optionally, per-item scores the store keeps with that row under
`scores` (one resume rule: `store.truncate_metrics`). `evaluators_for(source, dev)` gives every source

    Validation   next-token cross-entropy on the fixed held-out set (nats/token, weighted as the source
                 says, with its standard error), and the answers to the source's single-token questions
                 read off the same log-probabilities (accuracy and log-prob per ability: `group_scores`)
    TaskScoring  only for a source with multi-token tasks: per prompt and answer token, whether it is the
                 model's top-1 given the true prefix and its log-probability (teacher forcing), stored as
                 `scores["tasks"]` for the abilities study

and `describe(source)` the facts the studies need to read those scores (names, frequencies, the
Bayes-optimal log-probs), recorded once per sweep in sweep.json. Only abilities asked about at least
MIN_ITEMS distinct items count towards the share learned (accuracy >= LEARNED): a rare skill seen in one
validation sequence may repeat two chain states thirty times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from harness.data import Questions, Tasks, TokenSource, ValWeights, val_loss_with_se
from harness.data.source import pack_bits
from harness.device import Device

LEARNED = 0.8  # accuracy at which an ability counts as learned
MIN_ITEMS = 8  # abilities asked about fewer distinct items in the validation set are not scored
MAX_NAMED = 8  # a source with at most this many abilities gets per-ability curves in metrics and W&B
LOGP_DIGITS = 4  # task log-probs are stored rounded (nats)


@dataclass(frozen=True)
class Measurement:
    """What one evaluator measured: scalars for the eval row, and per-item scores to keep with it."""

    metrics: dict[str, float]
    scores: dict = field(default_factory=dict)  # JSON-able, keyed by kind ("tasks")


class Evaluator(Protocol):
    def __call__(self, model: torch.nn.Module) -> Measurement: ...


@dataclass(frozen=True)
class Answers:
    """One pass over a set of windows: the loss per sequence and the answers to its questions."""

    seq_loss: np.ndarray  # [n] mean next-token cross-entropy of each window, nats/token
    logp: np.ndarray  # [Q] log-probability the model gives each question's answer
    correct: np.ndarray  # [Q] bool: the answer is the model's top-1 token


@torch.no_grad()
def answer(
    model: torch.nn.Module, windows: tuple[torch.Tensor, torch.Tensor], dev: Device, questions: Questions,
    chunk: int = 64,
) -> Answers:  # fmt: skip
    """Every window's next-token loss and the model's answers to `questions` on the same windows, read
    off one forward pass (a gather and an argmax per chunk)."""
    model.eval()
    x_all, y_all = windows
    seq_len = y_all.shape[1]
    pos_t, answer_t = (torch.from_numpy(a).to(dev.torch) for a in (questions.pos, questions.answer))
    bounds = np.searchsorted(questions.pos, np.arange(0, len(x_all) + chunk, chunk) * seq_len)
    seq_loss, logps, correct = [], [], []
    for k, i in enumerate(range(0, len(x_all), chunk)):
        x, y = x_all[i : i + chunk], y_all[i : i + chunk]
        with dev.autocast():
            logits = model(input_ids=x).logits
        logp = logits.float().log_softmax(-1).flatten(0, 1)
        seq_loss.append(-logp.gather(1, y.reshape(-1, 1)).view(len(y), seq_len).double().mean(1))
        rows = logp[pos_t[bounds[k] : bounds[k + 1]] - i * seq_len]
        answers = answer_t[bounds[k] : bounds[k + 1]]
        logps.append(rows.gather(1, answers[:, None])[:, 0])
        correct.append(rows.argmax(-1) == answers)
    model.train()
    return Answers(*(torch.cat(t).cpu().numpy() for t in (seq_loss, logps, correct)))


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


def ability_metrics(scores: Scores, names: tuple[str, ...]) -> dict[str, float]:
    """Scalars for an eval row: accuracy and log-prob over all questions, the share of abilities
    learned, and each ability's own values when there are at most MAX_NAMED."""
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


class Validation:
    """The validation loss with its standard error, and the source's single-token questions."""

    def __init__(self, val: tuple[np.ndarray, np.ndarray], weights: ValWeights, questions: Questions,
                 dev: Device) -> None:  # fmt: skip
        self.windows = tuple(dev.tensor(a) for a in val)
        self.weights, self.questions, self.dev = weights, questions, dev

    def __call__(self, model: torch.nn.Module) -> Measurement:
        a = answer(model, self.windows, self.dev, self.questions)
        loss, se = val_loss_with_se(a.seq_loss, self.weights)
        scores = group_scores(self.questions, a.logp, a.correct)
        abilities = ability_metrics(scores, self.questions.names)
        return Measurement({"val/loss": loss, "val/loss_se": se, **abilities})


class TaskScoring:
    """Multi-token tasks: every answer token scored with the true prefix, kept per prompt."""

    def __init__(self, tasks: Tasks, dev: Device) -> None:
        self.windows = tuple(dev.tensor(a) for a in (tasks.x, tasks.y))
        self.tasks, self.dev = tasks, dev

    def __call__(self, model: torch.nn.Module) -> Measurement:
        t = self.tasks
        a = answer(model, self.windows, self.dev, t.questions)
        shape = (t.group.size, t.answer_len)
        correct, logp = a.correct.reshape(shape), a.logp.reshape(shape)
        metrics = {
            f"val/task_exact{t.answer_len}": float(correct.all(axis=1).mean()),
            "val/task_logp": float(logp.mean()),
        }
        scores = {"tasks": {"correct": pack_bits(correct), "logp": np.round(logp, LOGP_DIGITS).tolist()}}
        return Measurement(metrics, scores)


def evaluators_for(source: TokenSource, dev: Device) -> list[Evaluator]:
    """The source's evaluators on `dev`: validation always, task scoring when it poses tasks."""
    out: list[Evaluator] = [Validation(source.val_set(), source.val_weights, source.val_questions, dev)]
    if source.val_tasks is not None:
        out.append(TaskScoring(source.val_tasks, dev))
    return out


def describe(source: TokenSource) -> dict:
    """What reading the stored scores needs, per kind (sweep.json's `evaluators`): the tasks' names,
    frequencies, prompt groups, answer length, alphabet and Bayes-optimal log-probs."""
    t = source.val_tasks
    if t is None:
        return {}
    return {
        "tasks": {
            "description": t.description,
            "names": list(t.names),
            "frequency": None if t.frequency is None else t.frequency.tolist(),
            "group": t.group.tolist(),
            "answer_len": t.answer_len,
            "vocab_size": t.vocab_size,
            "bayes_logp": np.round(t.bayes_logp, LOGP_DIGITS).tolist(),
        }
    }
