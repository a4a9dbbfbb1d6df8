"""Real text (stdlib | text | hf) from a pretokenized cache, and the induction probe it is asked.

The corpus is read by `harness.data.corpus`, tokenized by `harness.data.tokenizer` and cached by
`harness.data.cache`; this module serves training windows and the validation set from that cache.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from harness.config import ConfigError, DataConfig
from harness.data.cache import TokenCache
from harness.data.corpus import Corpus
from harness.data.source import Questions, add_noise, quality_settings
from harness.data.validation import MIN_PER_STRATUM, ValWeights
from harness.hashing import stable_hash

INDUCTION_NGRAM = 3  # tokens of context whose earlier repeat in the window gives the induction answer


@dataclass(eq=False)
class TextSource:
    """Real text from a token cache: random training windows, a fixed validation prefix.

    Training batch `step` holds `batch_size` windows of seq_len + 1 consecutive tokens of the train
    split, at offsets drawn by `np.random.default_rng([data seed, seed, step])`: stateless, and windows
    cross document boundaries (marked by the end-of-text id), as in nanoGPT. The validation set is
    `val_tokens` tokens (rounded up to whole windows, fewer if the split is smaller) of the val split
    in non-overlapping windows spread evenly through it, so every part of it (every file) counts; its
    SE treats them as a systematic sample (`ValWeights.systematic`).
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
        n_val = min(max(MIN_PER_STRATUM, -(-cfg.val_tokens // self.seq_len)), (len(val) - 1) // self.seq_len)
        if n_val < MIN_PER_STRATUM:  # a standard error needs two windows
            docs = meta["documents"]
            raise ConfigError(
                f"data.val_fraction: the validation split has {len(val)} tokens ({docs['val']} of "
                f"{docs['val'] + docs['train']} documents), fewer than two windows of data.seq_len "
                f"= {self.seq_len} and one more token; raise data.val_fraction or use more documents "
                "(a .txt file is split at blank lines)"
            )
        stride = (len(val) - 1) // n_val  # >= seq_len: the windows do not overlap
        v = np.asarray(val[np.arange(n_val)[:, None] * stride + self._offsets], dtype=np.int64)
        self._val = (v[:, :-1], v[:, 1:])
        self.val_weights = ValWeights.systematic(n_val)

        tok = meta["tokenizer"]
        self.fingerprint = stable_hash(
            {
                "source": self.name,
                "cache": meta["key"],
                "tokenizer": tok["fingerprint"],
                "seq_len": self.seq_len,
                "val_tokens": cfg.val_tokens,
                "val_layout": "spread",
                **quality_settings(cfg),
            },
            12,
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
            **quality_settings(cfg),
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

    val_tasks = None  # real text poses no multi-token tasks

    def tokenizer(self):
        """The tokenizer the cache was built with (loaded on demand; for decoding samples)."""
        from harness.data.tokenizer import load_tokenizer

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
