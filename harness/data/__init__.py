"""Token sources behind one interface (`TokenSource`), chosen by `data.source` from a registry.

  synthetic  a Zipf mixture of Markov-chain skills with an exact Bayes loss (harness.data.synthetic)
  stdlib     the running Python's standard library            } real text (harness.data.text), read by
  text       the user's own .txt / .jsonl files                } harness.data.corpus, tokenized by
  hf         any `datasets.load_dataset` text column           } harness.data.tokenizer, cached by
                                                                 harness.data.cache
A new source is a class with the `TokenSource` interface and one entry in `SOURCES`.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.config import ConfigError, DataConfig
from harness.data.source import Questions, Tasks, TokenSource, epochs_over
from harness.data.validation import ValWeights, val_loss_with_se


def _synthetic(cfg: DataConfig) -> TokenSource:
    from harness.data.synthetic import SyntheticSource

    return SyntheticSource(cfg)


def _text(cfg: DataConfig) -> TokenSource:
    from harness.data.cache import load_token_cache
    from harness.data.corpus import load_corpus
    from harness.data.text import TextSource

    corpus = load_corpus(cfg)  # reads and checks local files now: bad ones fail before training
    return TextSource(cfg, corpus, load_token_cache(corpus, cfg))


# data.source -> a builder of the source (imports its module on use: real text loads tokenizers)
SOURCES: dict[str, Callable[[DataConfig], TokenSource]] = {
    "synthetic": _synthetic,
    "stdlib": _text,
    "text": _text,
    "hf": _text,
}


def make_source(cfg: DataConfig) -> TokenSource:
    """Build the source `cfg.source` names (ConfigError on bad data settings)."""
    if cfg.source not in SOURCES:
        raise ConfigError(f"data.source: unknown value {cfg.source!r}; allowed: {', '.join(SOURCES)}")
    return SOURCES[cfg.source](cfg)


__all__ = [
    "SOURCES", "Questions", "Tasks", "TokenSource", "ValWeights", "epochs_over", "make_source",
    "val_loss_with_se",
]  # fmt: skip
