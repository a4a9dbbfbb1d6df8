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
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.special import logsumexp

from harness.cache import TokenCache, load_token_cache
from harness.config import ConfigError, DataConfig, SyntheticConfig
from harness.corpus import Corpus, load_corpus

CHUNK_SEQS = 2048  # synthetic training sequences generated at once


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

    def token_logprobs(self, seq: np.ndarray) -> np.ndarray:
        """log p(x_{t+1} | x_0..x_t) under the true process (the Bayes-optimal predictor), [n, L-1].

        Exact: the posterior over skills is updated by each observed transition.
        """
        log_w = np.broadcast_to(np.log(self.skill_p), (seq.shape[0], len(self.skill_p))).copy()
        out = np.empty((seq.shape[0], seq.shape[1] - 1))
        for t in range(seq.shape[1] - 1):
            a, nxt = seq[:, t], seq[:, t + 1]
            hit = self.succ[:, a, :] == nxt[None, :, None]  # [K, n, b]
            q = (self.prob[:, a, :] * hit).sum(-1).T  # [n, K]: p_k(a -> nxt)
            with np.errstate(divide="ignore"):
                log_q = np.log(q)
            log_norm = logsumexp(log_w, axis=1)
            out[:, t] = logsumexp(log_w + log_q, axis=1) - log_norm
            log_w = log_w + log_q
        return out


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
        seq, _ = self.mixture.sample(n_val, self.seq_len + 1, np.random.default_rng([self.cfg.seed, 1]))
        self._val = (seq[:, :-1], seq[:, 1:])
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

    def tokenizer(self):
        """The tokenizer the cache was built with (loaded on demand; for decoding samples)."""
        from harness.tokenizer import load_tokenizer

        return load_tokenizer(self.cache.tokenizer_dir)
