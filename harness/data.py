"""Token sources behind one interface, and the built-in synthetic language with an exact Bayes loss.

Every source hands out training batches keyed by step (stateless: batch `step` is a pure function of
the seed and the step, so a resumed run sees exactly the batches it would have seen) and one fixed
held-out set. The synthetic source is a Zipf mixture of sparse Markov chains ('skills'): bigger
models and more data keep learning rarer skills, which is what makes loss fall as a power law
(the quantization model of Michaud et al. 2023), and its irreducible loss is known exactly.
`TextSource` serves real text (stdlib | text | hf) from a pretokenized cache (harness.corpus,
harness.tokenizer, harness.cache).

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

Every source also poses exact-answer questions on its validation set (`val_questions`), grouped into
abilities, so training can score each ability's accuracy and the log-probability of its answer
(harness.abilities): the synthetic source asks each skill for its chain's most likely next token,
real text asks for the token that completes an n-gram repeated earlier in the window (induction).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.special import logsumexp

from harness.cache import TokenCache, load_token_cache
from harness.config import ConfigError, DataConfig, SyntheticConfig
from harness.corpus import Corpus, load_corpus

CHUNK_SEQS = 2048  # synthetic training sequences generated at once
ANSWER_MIN_PROB = 0.7  # a skill question needs the Bayes-optimal predictor this sure of its answer
INDUCTION_NGRAM = 3  # tokens of context whose earlier repeat in the window gives the induction answer


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


class TokenSource(Protocol):
    """What training and the sweep need from a corpus."""

    name: str
    vocab_size: int  # token ids are in [0, vocab_size)
    seq_len: int
    fingerprint: str  # stable hash of corpus + tokenizer + settings; part of every run id
    bayes_loss: float | None  # exact irreducible val loss, nats/token, when the source knows it
    train_tokens: int | None  # distinct training tokens available (None: unlimited)
    info: dict  # facts recorded with the sweep (corpus size, python version, ...)

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


def make_source(cfg: DataConfig) -> TokenSource:
    """Build the source `cfg.source` names (ConfigError on bad data settings)."""
    if cfg.source == "synthetic":
        return SyntheticSource(cfg)
    if cfg.source in ("stdlib", "text", "hf"):
        corpus = load_corpus(cfg)  # reads and checks local files now: bad ones fail before training
        return TextSource(cfg, corpus, load_token_cache(corpus, cfg))
    raise ConfigError(f"data.source: unknown value {cfg.source!r}; allowed: synthetic, stdlib, text, hf")


def epochs_over(source: TokenSource, tokens: int) -> float:
    """Passes a run of `tokens` makes over the source's distinct training tokens (0: fresh data)."""
    return tokens / source.train_tokens if source.train_tokens else 0.0


def fingerprint(obj: object, n: int = 12) -> str:
    """Short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def _quality_settings(cfg: DataConfig) -> dict:
    # only when set, so the fingerprints (and run ids) of clean, uncapped data stay as they were
    out = {}
    if cfg.noise_fraction:
        out["noise_fraction"] = cfg.noise_fraction
    if cfg.max_unique_tokens:
        out["max_unique_tokens"] = cfg.max_unique_tokens
    return out


def add_noise(window: np.ndarray, fraction: float, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """`window` with each token replaced, with probability `fraction`, by a uniform id in [0, vocab_size)."""
    hit = rng.random(window.shape) < fraction
    return np.where(hit, rng.integers(0, vocab_size, size=window.shape), window)


@dataclass(frozen=True)
class SkillMixture:
    """The generative process: skill k ~ Zipf, x_0 ~ Uniform(V), x_{t+1} ~ chain_k(x_t).

    succ[k, a] lists the `branching` tokens that may follow a under skill k, prob[k, a] their
    probabilities; skill_p[k] is the skill's frequency.
    """

    skill_p: np.ndarray  # [K]
    succ: np.ndarray  # [K, V, b] int
    prob: np.ndarray  # [K, V, b] float

    @classmethod
    def create(cls, cfg: SyntheticConfig, vocab_size: int, seed: int) -> SkillMixture:
        rng = np.random.default_rng([seed, 0])
        k, v, b = cfg.n_skills, vocab_size, cfg.branching
        skill_p = np.arange(1, k + 1, dtype=np.float64) ** -cfg.zipf_exponent
        skill_p /= skill_p.sum()
        # b distinct successors per (skill, token): the first b of a random permutation of V
        succ = np.argpartition(rng.random((k, v, v), dtype=np.float32), b - 1, axis=-1)[..., :b]
        prob = rng.dirichlet(np.full(b, cfg.concentration), size=(k, v))
        return cls(skill_p=skill_p, succ=succ.astype(np.int64), prob=prob)

    @property
    def vocab_size(self) -> int:
        return self.succ.shape[1]

    def sample(self, n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n sequences of `length` tokens and the skill of each."""
        skills = rng.choice(len(self.skill_p), size=n, p=self.skill_p)
        seq = np.empty((n, length), dtype=np.int64)
        seq[:, 0] = rng.integers(0, self.vocab_size, size=n)
        cum = np.cumsum(self.prob, axis=-1)
        u = rng.random((n, length - 1))
        for t in range(length - 1):
            c = cum[skills, seq[:, t]]  # [n, b]
            j = np.minimum((u[:, t, None] > c).sum(-1), c.shape[-1] - 1)
            seq[:, t + 1] = self.succ[skills, seq[:, t], j]
        return seq, skills

    def _filter(self, seq: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Forward filtering: for t = 0..L-2, the unnormalised log posterior over skills given
        x_0..x_t and log p_k(x_t -> x_{t+1}), both [n, K]."""
        log_w = np.broadcast_to(np.log(self.skill_p), (seq.shape[0], len(self.skill_p))).copy()
        for t in range(seq.shape[1] - 1):
            a, nxt = seq[:, t], seq[:, t + 1]
            hit = self.succ[:, a, :] == nxt[None, :, None]  # [K, n, b]
            q = (self.prob[:, a, :] * hit).sum(-1).T  # [n, K]: p_k(a -> nxt)
            with np.errstate(divide="ignore"):
                log_q = np.log(q)
            yield log_w, log_q
            log_w = log_w + log_q

    def token_logprobs(self, seq: np.ndarray) -> np.ndarray:
        """log p(x_{t+1} | x_0..x_t) under the true process (the Bayes-optimal predictor), [n, L-1].

        Exact: the posterior over skills is updated by each observed transition.
        """
        out = np.empty((seq.shape[0], seq.shape[1] - 1))
        for t, (log_w, log_q) in enumerate(self._filter(seq)):
            out[:, t] = logsumexp(log_w + log_q, axis=1) - logsumexp(log_w, axis=1)
        return out

    def questions(self, seq: np.ndarray, skills: np.ndarray, min_prob: float = ANSWER_MIN_PROB) -> Questions:
        """One question per position whose answer needs the skill, grouped by the sequence's skill.

        The answer is the true skill's most likely successor of x_t. It is asked where the
        Bayes-optimal predictor (which must infer the skill from x_0..x_t) ranks that token first with
        probability >= min_prob, so an ideal model answers every question, and where the answer is not
        the most likely successor of x_t in the whole mixture, so bigram statistics alone answer none:
        accuracy measures whether a model has learned the skill (the most frequent skill, which
        decides the mixture's bigrams, may get no questions).
        """
        k, v, _ = self.succ.shape
        dense = np.zeros((k, v, v))  # dense[k, a, b] = p_k(a -> b)
        np.put_along_axis(dense, self.succ, self.prob, axis=-1)
        top = np.take_along_axis(self.succ, self.prob.argmax(-1)[..., None], -1)[..., 0]  # [K, V]
        bigram_top = np.einsum("k,kab->ab", self.skill_p, dense).argmax(-1)  # [V]
        asked = np.zeros((seq.shape[0], seq.shape[1] - 1), dtype=bool)
        for t, (log_w, _) in enumerate(self._filter(seq)):
            w = np.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))
            a = seq[:, t]
            pred = np.empty((len(a), v))  # the Bayes-optimal next-token distribution
            for tok in np.unique(a):
                rows = a == tok
                pred[rows] = w[rows] @ dense[:, tok, :]
            answer = top[skills, a]
            asked[:, t] = (pred.argmax(-1) == answer) & (pred.max(-1) >= min_prob) & (answer != bigram_top[a])
        pos = np.flatnonzero(asked)
        return Questions(
            pos=pos,
            answer=top[skills[:, None], seq[:, :-1]].ravel()[pos],
            group=np.repeat(skills, asked.shape[1])[pos],
            item=seq[:, :-1].ravel()[pos],  # the current token: the chain state asked about
            names=tuple(f"skill {i}" for i in range(k)),
            description=(
                "each skill is asked for its chain's most likely next token where the Bayes-optimal "
                f"predictor, inferring the skill from the context, ranks it first with p >= {min_prob} "
                "and the mixture's bigram statistics would predict another token (an item: the current "
                "token, i.e. the chain state asked about)"
            ),
            frequency=self.skill_p,
        )


@dataclass(eq=False)
class SyntheticSource:
    """A Zipf mixture of sparse Markov-chain skills; each sequence is one skill's chain."""

    cfg: DataConfig
    name: str = "synthetic"
    train_tokens: int | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vocab_size = self.cfg.vocab_size
        self.seq_len = self.cfg.seq_len
        self.mixture = SkillMixture.create(self.cfg.synthetic, self.vocab_size, self.cfg.seed)
        self.fingerprint = fingerprint(
            {
                "source": "synthetic",
                "vocab": self.vocab_size,
                "seq_len": self.seq_len,
                "val_tokens": self.cfg.val_tokens,
                "seed": self.cfg.seed,
                **vars(self.cfg.synthetic),
                **_quality_settings(self.cfg),
            }
        )
        n_val = max(1, -(-self.cfg.val_tokens // self.seq_len))
        seq, skills = self.mixture.sample(n_val, self.seq_len + 1, np.random.default_rng([self.cfg.seed, 1]))
        self._val = (seq[:, :-1], seq[:, 1:])
        self._val_seq, self._val_skills = seq, skills
        self.bayes_loss = float(-self.mixture.token_logprobs(seq).mean())
        self.info = {
            "bayes_loss": self.bayes_loss,
            "val_sequences": n_val,
            "val_tokens": n_val * self.seq_len,
            **_quality_settings(self.cfg),
        }
        # max_unique_tokens: the stream is cut to its first n sequences, which then repeat in order
        self._unique_seqs = (
            max(1, self.cfg.max_unique_tokens // self.seq_len) if self.cfg.max_unique_tokens else 0
        )
        if self._unique_seqs:
            self.train_tokens = self._unique_seqs * self.seq_len

    def train_batch(self, step: int, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        index = step * batch_size + np.arange(batch_size)  # positions in this seed's sequence stream
        if self._unique_seqs:
            index %= self._unique_seqs
        chunk = index // CHUNK_SEQS
        seq = np.empty((batch_size, self.seq_len + 1), dtype=np.int64)
        for c in np.unique(chunk):  # consecutive positions: one chunk, two at a boundary or wrap
            rows = chunk == c
            seq[rows] = self._chunk(seed, int(c))[index[rows] - c * CHUNK_SEQS]
        if self.cfg.noise_fraction:
            rng = np.random.default_rng([self.cfg.seed, 3, seed, step])
            seq = add_noise(seq, self.cfg.noise_fraction, self.vocab_size, rng)
        return seq[:, :-1], seq[:, 1:]

    @functools.lru_cache(maxsize=2)  # noqa: B019 (one source per sweep; bounded)
    def _chunk(self, seed: int, index: int) -> np.ndarray:
        # Sampling is vectorised across sequences, so a chunk of thousands costs about as much as
        # one batch would; sequence i of the stream depends only on (data seed, seed, i).
        rng = np.random.default_rng([self.cfg.seed, 2, seed, index])
        return self.mixture.sample(CHUNK_SEQS, self.seq_len + 1, rng)[0]

    def val_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self._val

    @functools.cached_property
    def val_questions(self) -> Questions:
        return self.mixture.questions(self._val_seq, self._val_skills)


@dataclass(eq=False)
class TextSource:
    """Real text from a token cache: random training windows, a fixed validation prefix.

    Training batch `step` holds `batch_size` windows of seq_len + 1 consecutive tokens of the train
    split, at offsets drawn by `np.random.default_rng([data seed, seed, step])`: stateless, and windows
    cross document boundaries (marked by the end-of-text id), as in nanoGPT. The validation set is
    the first `val_tokens` tokens (rounded up to whole windows, fewer if the split is smaller) of the
    val split, cut into non-overlapping windows.
    """

    cfg: DataConfig
    corpus: Corpus = field(repr=False)
    cache: TokenCache = field(repr=False)
    bayes_loss: float | None = None  # unknown for real text

    def __post_init__(self) -> None:
        cfg, meta = self.cfg, self.cache.meta
        self.name = self.corpus.name
        self.seq_len = cfg.seq_len
        self.vocab_size = int(meta["tokenizer"]["vocab_size"])
        train = self.cache.train
        n_train = min(len(train), cfg.max_unique_tokens) if cfg.max_unique_tokens else len(train)
        if n_train <= self.seq_len:
            raise ConfigError(
                f"data.seq_len: the training split has {n_train} tokens, fewer than one window of "
                f"data.seq_len + 1 = {self.seq_len + 1}; use more text or a shorter data.seq_len"
            )
        self._train = train[:n_train]
        self.train_tokens = n_train
        self._offsets = np.arange(self.seq_len + 1)

        val = self.cache.val
        n_val = min(max(1, -(-cfg.val_tokens // self.seq_len)), (len(val) - 1) // self.seq_len)
        if n_val < 1:
            docs = meta["documents"]
            raise ConfigError(
                f"data.val_fraction: the validation split has {len(val)} tokens ({docs['val']} of "
                f"{docs['val'] + docs['train']} documents), fewer than data.seq_len + 1 = "
                f"{self.seq_len + 1}; raise data.val_fraction or use more documents "
                "(a .txt file is split at blank lines)"
            )
        v = np.asarray(val[: n_val * self.seq_len + 1], dtype=np.int64)
        self._val = (v[:-1].reshape(n_val, self.seq_len), v[1:].reshape(n_val, self.seq_len))

        tok = meta["tokenizer"]
        self.fingerprint = fingerprint(
            {
                "source": self.name,
                "cache": meta["key"],
                "tokenizer": tok["fingerprint"],
                "seq_len": self.seq_len,
                "val_tokens": cfg.val_tokens,
                **_quality_settings(cfg),
            }
        )
        self.info = {
            **self.corpus.info,
            "tokenizer": {k: tok[k] for k in ("kind", "vocab_size", "eos_id", "fingerprint")}
            | {"path": str(self.cache.tokenizer_dir)},
            "tokens": {s: meta["files"][s]["tokens"] for s in ("train", "val")},
            "documents": meta["documents"],
            "chars": meta["chars"],
            "train_tokens": n_train,
            "val_sequences": n_val,
            "val_tokens": n_val * self.seq_len,
            "cache": {"path": str(self.cache.path), "status": self.cache.status, "dtype": meta["dtype"]},
            **_quality_settings(cfg),
        }

    def train_batch(self, step: int, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.cfg.seed, seed, step])
        starts = rng.integers(0, self.train_tokens - self.seq_len, size=batch_size)
        # one fancy-indexing gather from the memmap: only the touched pages are read
        window = self._train[starts[:, None] + self._offsets].astype(np.int64)
        if self.cfg.noise_fraction:
            window = add_noise(window, self.cfg.noise_fraction, self.vocab_size, rng)
        return window[:, :-1], window[:, 1:]

    def val_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self._val

    @functools.cached_property
    def val_questions(self) -> Questions:
        return induction_questions(*self._val)

    def tokenizer(self):
        """The tokenizer the cache was built with (loaded on demand; for decoding samples)."""
        from harness.tokenizer import load_tokenizer

        return load_tokenizer(self.cache.tokenizer_dir)


def induction_questions(x: np.ndarray, y: np.ndarray, n: int = INDUCTION_NGRAM) -> Questions:
    """Induction: where the n tokens ending at x[i, t] occurred earlier in the same window, every
    earlier occurrence was followed by one same token, and y[i, t] is that token, ask for it.

    The answer is exact (copying the earlier continuation gives it), and a model needs the context to
    find it: it measures in-context copying (induction heads, Olsson et al. 2022) on real text.
    """
    asked = np.zeros(y.shape, dtype=bool)
    for i, (row, nxt) in enumerate(zip(x.tolist(), y.tolist(), strict=True)):
        seen: dict[tuple[int, ...], set[int]] = {}
        for t in range(n - 1, len(row)):
            gram = tuple(row[t - n + 1 : t + 1])
            after = seen.setdefault(gram, set())
            asked[i, t] = after == {nxt[t]}
            after.add(nxt[t])
    pos = np.flatnonzero(asked)
    return Questions(
        pos=pos,
        answer=y.ravel()[pos],
        group=np.zeros(len(pos), dtype=np.int64),
        item=y.ravel()[pos],  # the token to copy
        names=("induction",),
        description=(
            f"induction: the next token completes a {n}-token sequence repeated earlier in the window, "
            "whose earlier occurrences all continued with it (an item: the token to copy)"
        ),
    )
