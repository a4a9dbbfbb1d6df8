"""Pretokenized corpora on disk: one flat token file per split, memory-mapped, built once.

Layout, under `cache_dir/<key>/`, where key hashes (corpus fingerprint, split settings, tokenizer
spec): `train.bin` and `val.bin` (every document's ids followed by the end-of-text id, documents in
stream order; uint16 when every id fits, else uint32), `tokenizer/` (the tokenizer, loadable with
`AutoTokenizer.from_pretrained`) and `meta.json` (source, tokenizer, token and document counts,
dtype, and the size and sha256 of each file).

A cache is built in a temporary directory and renamed into place, so a reader never sees half a
cache; a file lock (`cache_dir/<key>.lock`) makes concurrent sweeps wait for one builder instead of
both building. Every load checks each file's size and sha256 against meta.json; a truncated or
altered cache is reported (logging, warning level) and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from harness.config import DataConfig
from harness.data.corpus import Corpus
from harness.data.tokenizer import Tokenizer, build_tokenizer, tokenizer_spec
from harness.hashing import file_digest, stable_hash

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the layout changes: older caches then no longer match
SPLITS = ("train", "val")
ENCODE_CHARS = 1 << 21  # characters handed to the tokenizer per encode_batch call


@dataclass(frozen=True)
class TokenCache:
    """A loaded (verified) cache: the token memmaps and their meta.json."""

    path: Path
    meta: dict
    train: np.ndarray  # read-only memmap, flat token ids of the training split
    val: np.ndarray
    status: str  # loaded | built | rebuilt (<why>)

    @property
    def tokenizer_dir(self) -> Path:
        return self.path / "tokenizer"


def cache_key(corpus: Corpus, cfg: DataConfig) -> str:
    """What fixes the token stream: the corpus content, its split/cap, the tokenizer asked for."""
    return stable_hash(
        {
            "format": FORMAT,
            "source": corpus.name,
            "corpus": corpus.fingerprint,
            "settings": corpus.settings,
            "tokenizer": tokenizer_spec(cfg),
        }
    )


def load_token_cache(corpus: Corpus, cfg: DataConfig) -> TokenCache:
    """The verified cache for (corpus, tokenizer settings), built first if missing or broken."""
    root = Path(cfg.cache_dir).expanduser()
    key = cache_key(corpus, cfg)
    path = root / key
    cache, problem = open_cache(path)
    if cache is not None:
        return cache
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{key}.lock")):
        cache, problem = open_cache(path)  # another process may have built it while we waited
        if cache is not None:
            return cache
        status = "built"
        if path.exists():
            log.warning("token cache %s is unusable (%s); rebuilding it", path, problem)
            status = f"rebuilt ({problem})"
            # moved aside first: memmaps other processes hold on the old files stay valid
            os.replace(path, root / f".{key}.broken-{uuid.uuid4().hex[:8]}")
        for stale in root.glob(f".{key}.*"):  # leftovers of crashed builds; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        build_cache(corpus, cfg, path)
    cache, problem = open_cache(path)
    if cache is None:
        raise RuntimeError(f"token cache {path} is unusable right after building it: {problem}")
    return TokenCache(path=cache.path, meta=cache.meta, train=cache.train, val=cache.val, status=status)


def open_cache(path: Path) -> tuple[TokenCache | None, str]:
    """(cache, '') when `path` holds a complete cache whose files match meta.json, else (None, why)."""
    meta_path = path / "meta.json"
    if not meta_path.exists():
        return None, "no meta.json" if path.exists() else "missing"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            return None, f"format {meta.get('format')} is not {FORMAT}"
        dtype = np.dtype(meta["dtype"])
        arrays = {}
        for split in SPLITS:
            f, expected = path / f"{split}.bin", meta["files"][split]
            size = f.stat().st_size
            if size != expected["bytes"]:
                return None, f"{f.name} has {size} bytes, meta.json says {expected['bytes']} (truncated?)"
            if file_digest(f)[1] != expected["sha256"]:
                return None, f"{f.name} does not match its sha256 in meta.json (corrupted?)"
            # np.memmap cannot map an empty file; an empty split is reported by the caller
            arrays[split] = np.memmap(f, dtype=dtype, mode="r") if size else np.empty(0, dtype)
    except FileNotFoundError as e:  # also: another process is replacing a broken cache right now
        return None, f"{Path(e.filename or '?').name} is missing"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return None, f"meta.json or a token file is unreadable ({type(e).__name__}: {e})"
    return TokenCache(path=path, meta=meta, train=arrays["train"], val=arrays["val"], status="loaded"), ""


def build_cache(corpus: Corpus, cfg: DataConfig, path: Path) -> None:
    """Train/load the tokenizer, tokenize every document once, and move the result to `path`."""
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        tokenizer = build_tokenizer(cfg, corpus.texts("train"))
        t_tok = time.perf_counter() - t0
        tokenizer.save(tmp / "tokenizer")
        dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32)
        counts = write_tokens(corpus, tokenizer, tmp, dtype)
        meta = {
            "format": FORMAT,
            "key": path.name,
            "source": {
                "name": corpus.name,
                "fingerprint": corpus.fingerprint,
                "settings": corpus.settings,
                "info": corpus.info,
            },
            "tokenizer": {
                **tokenizer_spec(cfg),
                "vocab_size": tokenizer.vocab_size,
                "eos_id": tokenizer.eos_id,
                "fingerprint": tokenizer.fingerprint,
            },
            "dtype": dtype.name,
            **counts,
            "build_s": {"tokenizer": round(t_tok, 3), "total": round(time.perf_counter() - t0, 3)},
            "versions": _versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")  # last: marks the cache complete
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_tokens(corpus: Corpus, tokenizer: Tokenizer, directory: Path, dtype: np.dtype) -> dict:
    """Tokenize the corpus into `directory`/{train,val}.bin; counts and checksums for meta.json."""
    digests = {s: hashlib.sha256() for s in SPLITS}
    tokens = dict.fromkeys(SPLITS, 0)
    docs = dict.fromkeys(SPLITS, 0)
    chars = dict.fromkeys(SPLITS, 0)
    eos = None if tokenizer.eos_id is None else np.array([tokenizer.eos_id], dtype=dtype)
    outs = {s: open(directory / f"{s}.bin", "wb") for s in SPLITS}  # noqa: SIM115 (closed below)
    try:
        for batch in _batches(corpus):
            # one encode_batch over both splits: the Rust tokenizer parallelises across documents
            encoded = tokenizer.encode_batch([d.text for d in batch])
            parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
            for doc, ids in zip(batch, encoded, strict=True):
                parts[doc.split].append(ids.astype(dtype, copy=False))
                if eos is not None:
                    parts[doc.split].append(eos)
                docs[doc.split] += 1
                chars[doc.split] += len(doc.text)
            for split, arrs in parts.items():
                if arrs:
                    buf = np.concatenate(arrs).tobytes()
                    outs[split].write(buf)
                    digests[split].update(buf)
                    tokens[split] += len(buf) // dtype.itemsize
    finally:
        for f in outs.values():
            f.close()
    files = {
        s: {"tokens": tokens[s], "bytes": tokens[s] * dtype.itemsize, "sha256": digests[s].hexdigest()}
        for s in SPLITS
    }
    return {"files": files, "documents": docs, "chars": chars}


def _batches(corpus: Corpus) -> Iterator[list]:
    batch, n = [], 0
    for doc in corpus.documents():
        batch.append(doc)
        n += len(doc.text)
        if n >= ENCODE_CHARS:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("tokenizers", "transformers", "datasets", "numpy"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out
