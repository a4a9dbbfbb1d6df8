"""What every token source offers (one interface), and the data-quality dials they share.

Every source hands out training batches keyed by step (stateless: batch `step` is a pure function of
the seed and the step, so a resumed run sees exactly the batches it would have seen) and one fixed
held-out set, and poses exact-answer questions on that set, grouped into abilities (`Questions`), so
training can score each ability's accuracy and the log-probability of its answer.

Two data-quality dials work on every source, on the training stream only (validation stays clean,
so the synthetic Bayes loss stays exact):
  noise_fraction     each token of a training window (inputs and targets alike: a corrupted token is
                     both context and something to predict, as in noisy web text) is replaced, with
                     this probability, by a uniform random id. A draw may hit the original id, so the
                     share of changed tokens is noise_fraction * (1 - 1/vocab_size).
  max_unique_tokens  training only ever sees the first this-many tokens of its stream (text: windows
                     inside the first max_unique_tokens tokens of the train split; synthetic: the first
                     max_unique_tokens // seq_len sequences, repeated in order), so budgets beyond it
                     repeat data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from harness.config import DataConfig
from harness.data.validation import ValWeights


@dataclass(frozen=True)
class Questions:
    """Next-token questions with one exact answer on the validation set, grouped into abilities.

    Question q asks for token answer[q] at target position pos[q] (flat: row * seq_len + t of the
    val targets, ascending) and tests ability group[q]; item[q] says what it asks about (questions
    of one item differ only in context, so they are not independent evidence); names[g] labels
    ability g, frequency[g] is its share of the training distribution (None when unknown), and
    description says how they were asked.
    """

    pos: np.ndarray  # [Q] int64
    answer: np.ndarray  # [Q] int64
    group: np.ndarray  # [Q] int64
    item: np.ndarray  # [Q] int64
    names: tuple[str, ...]
    description: str
    frequency: np.ndarray | None = None


@dataclass(frozen=True)
class Tasks:
    """Multi-token tasks on dedicated prompts, grouped into abilities.

    Prompt i is the window x[i] with next-token targets y[i]; its last answer_len targets are the answer,
    asked token by token with the true prefix (teacher forcing), so the trainer scores them as
    single-token questions (`questions`). bayes_logp[i, t] is the Bayes-optimal predictor's
    log-probability of answer token t; names[g] labels ability g, frequency[g] is its
    share of the training distribution.
    """

    x: np.ndarray  # [P, T] int64
    y: np.ndarray  # [P, T] int64
    group: np.ndarray  # [P] int64
    names: tuple[str, ...]
    answer_len: int
    bayes_logp: np.ndarray  # [P, answer_len]
    vocab_size: int  # of the tokens (log 1/vocab_size: a uniform guess's log-prob)
    description: str
    frequency: np.ndarray | None = None

    @property
    def questions(self) -> Questions:
        """Every answer token as a question on (x, y), prompt-major."""
        n, T = self.y.shape
        m = self.answer_len
        pos = (np.arange(n)[:, None] * T + np.arange(T - m, T)[None, :]).ravel()
        answer = self.y[:, T - m :].ravel()
        group = np.repeat(self.group, m)
        return Questions(pos, answer, group, answer, self.names, self.description, self.frequency)


class TokenSource(Protocol):
    """What training and the sweep need from a corpus."""

    name: str
    vocab_size: int  # token ids are in [0, vocab_size)
    seq_len: int
    fingerprint: str  # stable hash of corpus + tokenizer + settings; part of every run id
    bayes_loss: float | None  # exact irreducible val loss, nats/token, when the source knows it
    train_tokens: int | None  # distinct training tokens available (None: unlimited)
    info: dict  # facts recorded with the sweep (corpus size, python version, ...)
    val_weights: ValWeights  # how the held-out sequences combine into the loss, and its strata

    def train_batch(self, step: int, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and next-token targets, int64 arrays of shape [batch_size, seq_len]."""
        ...

    def val_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The fixed held-out inputs and targets, int64 arrays of shape [n, seq_len]."""
        ...

    @property
    def val_questions(self) -> Questions:
        """Exact-answer questions on the held-out set, grouped into abilities (skills, probes)."""
        ...

    @property
    def val_tasks(self) -> Tasks | None:
        """Multi-token tasks on prompts of their own (None: the source poses none)."""
        ...


def pack_bits(correct: np.ndarray) -> list[int]:
    """Each prompt's correct answer tokens ([P, M] bool) as one integer (bit t: token t), for storage."""
    return (correct.astype(np.int64) << np.arange(correct.shape[1])).sum(axis=1).tolist()


def unpack_bits(bits: list[int], answer_len: int) -> np.ndarray:
    """The inverse of pack_bits: [P, answer_len] bool."""
    return (np.asarray(bits, dtype=np.int64)[:, None] >> np.arange(answer_len)) & 1 == 1


def epochs_over(source: TokenSource, tokens: int) -> float:
    """Passes a run of `tokens` makes over the source's distinct training tokens (0: fresh data)."""
    return tokens / source.train_tokens if source.train_tokens else 0.0


def quality_settings(cfg: DataConfig) -> dict:
    """The data-quality dials that are set, for fingerprints (clean, uncapped data adds nothing, so
    its fingerprints and run ids stay as they were)."""
    out = {}
    if cfg.noise_fraction:
        out["noise_fraction"] = cfg.noise_fraction
    if cfg.max_unique_tokens:
        out["max_unique_tokens"] = cfg.max_unique_tokens
    return out


def add_noise(window: np.ndarray, fraction: float, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """`window` with each token replaced, with probability `fraction`, by a uniform id in [0, vocab_size)."""
    hit, ids = noise_draws(window.shape, fraction, vocab_size, rng)
    return np.where(hit, ids, window)


def noise_draws(
    shape: tuple[int, ...], fraction: float, vocab_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`add_noise`'s draws: which tokens are replaced, and the uniform ids that replace them."""
    return rng.random(shape) < fraction, rng.integers(0, vocab_size, size=shape)
