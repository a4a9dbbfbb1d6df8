"""Tokenizers for the real-text sources: a byte-level BPE trained on the corpus, raw bytes, or a
pretrained one by name.

All three hand back a `Tokenizer`: `encode_batch` (no special tokens), `eos_id` (appended after every
document in the token stream), `vocab_size` (every id is below it) and a `fingerprint` of what maps
text to ids (vocabulary and merges, not the recipe). `bpe` and `pretrained` wrap a
`transformers.PreTrainedTokenizerFast`, saved beside the token cache so anyone can load it with
`AutoTokenizer.from_pretrained(<cache>/tokenizer)`.

  bpe         GPT-2-style byte-level BPE (`tokenizers`), trained on the training split only (at most
              `tokenizer_train_chars` characters of it); id 0 is `<|endoftext|>`, the 256 bytes follow,
              then the merges, up to `vocab_size` ids in all (a small corpus may yield fewer).
  bytes       ids are the UTF-8 bytes (vocab 256); byte 0 (NUL, which text files never contain) marks
              the end of a document.
  pretrained  `AutoTokenizer.from_pretrained(tokenizer_name)`: a local directory, the local HF cache,
              or the Hub; vocab_size = len(tokenizer), whatever `data.vocab_size` says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import ConfigError, DataConfig
from harness.data.corpus import hub_offline_reason, one_line
from harness.hashing import text_hash

EOT = "<|endoftext|>"
META_FILE = "harness_tokenizer.json"


@dataclass
class Tokenizer:
    """Text -> token ids; see the module docstring for each kind."""

    kind: str  # bpe | bytes | pretrained
    vocab_size: int  # every id is in [0, vocab_size)
    eos_id: int | None  # appended after each document (None: documents are simply concatenated)
    fingerprint: str  # hash of the vocabulary/merges: equal fingerprints tokenize identically
    name: str = ""  # pretrained: the name it was loaded by
    hf: Any = field(default=None, repr=False)  # the transformers tokenizer (bpe, pretrained)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids of each text, without special tokens."""
        if self.kind == "bytes":
            return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts]
        backend = getattr(self.hf, "backend_tokenizer", None)
        if backend is not None:  # the Rust tokenizer, parallel across texts, skipping offsets
            return [
                np.asarray(e.ids, dtype=np.int64)
                for e in backend.encode_batch_fast(texts, add_special_tokens=False)
            ]
        ids = self.hf(texts, add_special_tokens=False)["input_ids"]
        return [np.asarray(i, dtype=np.int64) for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        if self.kind == "bytes":
            return bytes(ids).decode("utf-8", errors="replace")
        return self.hf.decode(ids)

    def save(self, directory: str | Path) -> None:
        """Write the HF files and a small harness json to `directory`; `load_tokenizer` reads them."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.hf is not None:
            self.hf.save_pretrained(str(directory))
        meta = {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "eos_id": self.eos_id,
            "fingerprint": self.fingerprint,
            "name": self.name,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def tokenizer_spec(cfg: DataConfig) -> dict:
    """The settings that decide which tokenizer `cfg` asks for (part of the token-cache key)."""
    if cfg.tokenizer == "bytes":
        return {"kind": "bytes"}
    if cfg.tokenizer == "pretrained":
        return {"kind": "pretrained", "name": cfg.tokenizer_name}
    return {"kind": "bpe", "vocab_size": cfg.vocab_size, "train_chars": cfg.tokenizer_train_chars}


def build_tokenizer(cfg: DataConfig, train_texts: Iterable[str]) -> Tokenizer:
    """The tokenizer `cfg.tokenizer` names; bpe is trained on `train_texts` (only read for bpe)."""
    if cfg.tokenizer == "bytes":
        return bytes_tokenizer()
    if cfg.tokenizer == "pretrained":
        return load_pretrained(cfg.tokenizer_name)
    if cfg.tokenizer == "bpe":
        return train_bpe(train_texts, cfg.vocab_size, max_chars=cfg.tokenizer_train_chars)
    raise ConfigError(f"data.tokenizer: unknown value {cfg.tokenizer!r}; allowed: bpe, bytes, pretrained")


def bytes_tokenizer() -> Tokenizer:
    return Tokenizer(kind="bytes", vocab_size=256, eos_id=0, fingerprint=text_hash("bytes/utf-8/eos=0", 16))


def train_bpe(texts: Iterable[str], vocab_size: int, *, max_chars: int = 0) -> Tokenizer:
    """A byte-level BPE with `vocab_size` ids (id 0: <|endoftext|>), trained on `texts`."""
    from tokenizers import Tokenizer as RustTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < 257:
        raise ConfigError(
            f"data.vocab_size: a byte-level BPE needs >= 257 ids (256 bytes + {EOT}), got {vocab_size}"
        )
    tok = RustTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte has an id: nothing is unknown
        show_progress=False,
    )
    tok.train_from_iterator(_take_chars(texts, max_chars), trainer)
    if tok.get_vocab_size() < 257:
        raise ConfigError("data.source: no training text to train the BPE tokenizer on")
    return _wrap(tok, kind="bpe", vocab_size=vocab_size)


def load_pretrained(name: str) -> Tokenizer:
    """AutoTokenizer by name: a local directory or the local HF cache first, then the Hub if reachable."""
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as local_error:
        if os.path.isdir(os.path.expanduser(name)):
            raise ConfigError(
                f"data.tokenizer_name: cannot load a tokenizer from {name!r}: {one_line(local_error)}"
            ) from None
        if reason := hub_offline_reason():
            raise ConfigError(
                f"data.tokenizer_name: {name!r} is not in the local Hugging Face cache and the Hub is "
                f"unreachable ({reason}); use data.tokenizer=bpe or bytes, or a local tokenizer directory"
            ) from None
        try:
            hf = AutoTokenizer.from_pretrained(name)
        except Exception as e:
            raise ConfigError(f"data.tokenizer_name: cannot load {name!r}: {one_line(e)}") from None
    return Tokenizer(
        kind="pretrained",
        vocab_size=len(hf),
        eos_id=hf.eos_token_id,
        fingerprint=_fingerprint(hf),
        name=name,
        hf=hf,
    )


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """A tokenizer written by `Tokenizer.save`."""
    directory = Path(directory)
    meta = json.loads((directory / META_FILE).read_text())
    hf = None
    if meta["kind"] != "bytes":
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return Tokenizer(**meta, hf=hf)


def _wrap(tok: Any, *, kind: str, vocab_size: int) -> Tokenizer:
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOT, bos_token=EOT, unk_token=None)
    return Tokenizer(
        kind=kind, vocab_size=vocab_size, eos_id=tok.token_to_id(EOT), fingerprint=_fingerprint(hf), hf=hf
    )


def _take_chars(texts: Iterable[str], max_chars: int) -> Iterator[str]:
    if not max_chars:
        yield from texts
        return
    total = 0
    for text in texts:
        text = text[: max_chars - total]
        total += len(text)
        yield text
        if total >= max_chars:
            return


def _fingerprint(hf: Any) -> str:
    """Hash of what maps text to ids without special tokens: normalizer, pre-tokenizer, model
    (vocabulary, merges) and the added tokens' ids; not padding, truncation or post-processing."""
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:  # a slow (Python) tokenizer: its vocabulary is what we can see
        return text_hash(json.dumps(sorted(hf.get_vocab().items())), 16)
    spec = json.loads(backend.to_str())
    parts = {k: spec.get(k) for k in ("normalizer", "pre_tokenizer", "model")}
    parts["added_tokens"] = sorted((t["id"], t["content"]) for t in spec.get("added_tokens", []))
    return text_hash(json.dumps(parts, sort_keys=True), 16)
