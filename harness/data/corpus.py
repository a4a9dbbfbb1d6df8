"""Real-text corpora as a stream of documents, each assigned to train or validation by a stable hash.

Three sources, one shape (`Corpus`):
  stdlib  the running Python's standard library, one document per *.py file (no site-packages, no
          test suites unless `include_tests`); offline and about 12 MB, so CPU sweeps need nothing.
  text    the user's own files: a .jsonl/.ndjson file gives one document per record (`text_field`),
          any other file one document per blank-line-separated paragraph.
  hf      `datasets.load_dataset(hf_path, hf_name, split=hf_split, streaming=hf_streaming)`, reading
          `text_field`; with hf_path text/json/csv/parquet and `files` it reads local files.

The split is by document, never by position inside one: a stdlib file goes to validation when the
hash of (data seed, relative path) falls below `val_fraction`, any other document when the hash of
(data seed, content) does, so duplicates land in the same split. `max_chars` caps the characters
read, in the stream's order (stdlib files are visited in a hash-shuffled order, so a cap samples
whole files at random rather than the alphabetically first modules).

`Corpus.fingerprint` hashes the content (what documents there are), without touching the Hub for a
hub dataset, so a token cache built earlier is found offline; `Corpus.settings` holds what decides
how that content becomes a stream (split, cap).
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import json
import os
import platform
import socket
import sysconfig
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from harness.config import ConfigError, DataConfig
from harness.hashing import file_digest, stable_hash, text_hash, unit_hash

TEST_DIRS = frozenset({"test", "tests", "idle_test"})  # stdlib test-suite directories
SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})
JSONL_SUFFIXES = (".jsonl", ".ndjson")
# load_dataset builders that read local files (everything else is looked up on the Hub)
LOCAL_BUILDERS = frozenset({"text", "json", "csv", "parquet", "arrow", "pandas", "xml", "webdataset"})
TEXT_BUILDERS = frozenset({"text", "json", "csv"})  # their data_files are checked as UTF-8 text
HUB_TIMEOUT_S = 2.0
READ_CHUNK = 1 << 20
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass(frozen=True)
class Document:
    name: str  # stdlib: relative path; text: file:first line; hf: row index
    split: str  # train | val
    text: str


@dataclass
class Corpus:
    """A source's documents in a stable order, each with its split; iterate with `documents()`."""

    name: str  # stdlib | text | hf
    fingerprint: str  # hash of the content (paths, sizes, content hashes; or the hub dataset's id)
    settings: dict  # split seed, val_fraction, max_chars: with the fingerprint, fixes the stream
    info: dict  # facts recorded with the sweep (python version, files, bytes, ...)
    _read: Callable[[], Iterator[tuple[str, str, str]]] = field(repr=False)  # (name, split key, text)

    def documents(self) -> Iterator[Document]:
        """Every non-empty document, in stream order, the total capped at `max_chars` characters."""
        s = self.settings
        seed, val_fraction, cap = s["seed"], s["val_fraction"], s["max_chars"]
        total = 0
        for name, key, text in self._read():
            if not text:
                continue
            if cap:
                if total >= cap:
                    return
                text = text[: cap - total]
            total += len(text)
            yield Document(name, split_of(key, seed, val_fraction), text)

    def texts(self, split: str) -> Iterator[str]:
        return (d.text for d in self.documents() if d.split == split)


def load_corpus(cfg: DataConfig) -> Corpus:
    """The corpus `cfg.source` names; reads and checks local files now (ConfigError naming the file)."""
    readers = {"stdlib": _stdlib_corpus, "text": _text_corpus, "hf": _hf_corpus}
    if cfg.source not in readers:
        raise ConfigError(f"data.source: {cfg.source!r} is not a text corpus; allowed: {', '.join(readers)}")
    name, fp, info, read = readers[cfg.source](cfg)
    settings = {"seed": cfg.seed, "val_fraction": cfg.val_fraction, "max_chars": cfg.max_chars}
    return Corpus(name=name, fingerprint=fp, settings=settings, info=info, _read=read)


def split_of(key: str, seed: int, val_fraction: float) -> str:
    """'val' for a stable pseudo-random `val_fraction` of keys, else 'train'."""
    return "val" if unit_hash(f"split/{seed}/{key}") < val_fraction else "train"


def one_line(e: BaseException) -> str:
    """`Type: first line of the message`, for ConfigErrors that wrap a library's exception."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


# --- stdlib -----------------------------------------------------------------------------------------


def _stdlib_corpus(cfg: DataConfig):
    root = Path(sysconfig.get_paths()["stdlib"])
    files, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        # prune in place so os.walk never descends into site-packages (can be huge) or test suites
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and (cfg.include_tests or d not in TEST_DIRS)
        )
        for fn in sorted(filenames):
            if not fn.endswith(".py"):
                continue
            rel = (rel_dir / fn).as_posix()
            data = (root / rel).read_bytes()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:  # a few test fixtures use legacy encodings on purpose
                skipped.append(rel)
                continue
            files.append((rel, len(data), hashlib.sha256(data).hexdigest(), text))
    if not files:
        raise ConfigError(f"data.source: no *.py files found under the stdlib at {root}")
    fp = stable_hash([(rel, size, sha) for rel, size, sha, _ in files])
    info = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "stdlib": str(root),
        "include_tests": cfg.include_tests,
        "files": len(files),
        "bytes": sum(f[1] for f in files),
        "skipped_undecodable": skipped,
        "corpus_fingerprint": fp,
    }
    seed = cfg.seed
    order = sorted(files, key=lambda f: unit_hash(f"order/{seed}/{f[0]}"))

    def read() -> Iterator[tuple[str, str, str]]:
        for rel, _, _, text in order:
            yield rel, rel, text  # split key: the relative path, so the split is by file

    return "stdlib", fp, info, read


# --- local files ------------------------------------------------------------------------------------


def resolve_files(patterns: list[str]) -> list[Path]:
    """Expand paths and globs (in order, without duplicates); ConfigError for one that matches nothing."""
    out: dict[Path, None] = {}
    for pattern in patterns:
        expanded = os.path.expanduser(str(pattern))
        if glob.has_magic(expanded):
            matches = sorted(p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p))
            if not matches:
                raise ConfigError(f"data.files: {pattern!r} matches no file")
        else:
            if not os.path.isfile(expanded):
                what = "is a directory, not a file" if os.path.isdir(expanded) else "does not exist"
                raise ConfigError(f"data.files: {pattern!r} {what}")
            matches = [expanded]
        for m in matches:
            out[Path(m).resolve()] = None
    return list(out)


def check_text_file(path: Path) -> tuple[int, str]:
    """(size, sha256) of a UTF-8 text file; ConfigError naming it when empty, binary or undecodable."""
    digest, decoder, has_text, size = hashlib.sha256(), codecs.getincrementaldecoder("utf-8")(), False, 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(READ_CHUNK):
                if b"\x00" in chunk:  # NUL never occurs in text; byte id 0 is also our end-of-text
                    raise ConfigError(f"data.files: {str(path)!r} is not a text file (it contains NUL bytes)")
                try:
                    has_text = bool(decoder.decode(chunk).strip()) or has_text
                except UnicodeDecodeError as e:
                    raise ConfigError(
                        f"data.files: {str(path)!r} is not UTF-8 text (undecodable byte near offset "
                        f"{size + e.start})"
                    ) from None
                size += len(chunk)
                digest.update(chunk)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise ConfigError(
                    f"data.files: {str(path)!r} is not UTF-8 text (ends mid-character)"
                ) from None
    except OSError as e:
        raise ConfigError(f"data.files: {str(path)!r} cannot be read ({e.strerror})") from None
    if not has_text:
        raise ConfigError(f"data.files: {str(path)!r} is empty (no text)")
    return size, digest.hexdigest()


def _read_text_file(path: Path, text_field: str) -> Iterator[tuple[str, str, str]]:
    with open(path, encoding="utf-8") as f:
        if path.suffix.lower() in JSONL_SUFFIXES:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path.name}:{lineno}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ConfigError(
                        f"data.files: {str(path)!r} line {lineno}: not JSON ({e.msg})"
                    ) from None
                text = record.get(text_field) if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise ConfigError(
                        f"data.text_field: {str(path)!r} line {lineno} has no string field {text_field!r}"
                    )
                yield where, text_hash(text), text
            return
        para: list[str] = []
        start = 1
        for lineno, line in enumerate(f, 1):
            if line.strip():
                if not para:
                    start = lineno
                para.append(line)
            elif para:
                text = "".join(para)
                yield f"{path.name}:{start}", text_hash(text), text
                para = []
        if para:
            text = "".join(para)
            yield f"{path.name}:{start}", text_hash(text), text


def _text_corpus(cfg: DataConfig):
    paths = resolve_files(list(cfg.files))
    stats = [check_text_file(p) for p in paths]
    fp = stable_hash({"files": [(size, sha) for size, sha in stats], "text_field": cfg.text_field})
    info = {"files": [str(p) for p in paths], "bytes": sum(s for s, _ in stats), "corpus_fingerprint": fp}
    field_ = cfg.text_field

    def read() -> Iterator[tuple[str, str, str]]:
        for p in paths:
            yield from _read_text_file(p, field_)

    return "text", fp, info, read


# --- Hugging Face datasets --------------------------------------------------------------------------


def hub_offline_reason(timeout: float = HUB_TIMEOUT_S) -> str | None:
    """Why the Hugging Face Hub cannot be used now (an offline flag, no connection), or None."""
    for var in _OFFLINE_VARS:
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return f"{var}={os.environ[var]} is set"
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    # a thread, because name resolution ignores the socket timeout and can hang far longer
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return None if ok else f"no connection to {host}:{port} within {timeout:g} s"


def _is_hub_dataset(path: str) -> bool:
    return path not in LOCAL_BUILDERS and not os.path.exists(os.path.expanduser(path))


def _hf_corpus(cfg: DataConfig):
    hub = _is_hub_dataset(cfg.hf_path)
    if hub:  # data_files of a hub dataset are patterns inside its repository; passed on as given
        data_files, content = list(cfg.files) or None, list(cfg.files)
    else:
        paths = resolve_files(list(cfg.files)) if cfg.files else []
        digest = check_text_file if cfg.hf_path in TEXT_BUILDERS else file_digest
        data_files, content = [str(p) for p in paths] or None, [digest(p) for p in paths]
    ident = {
        "hf_path": cfg.hf_path if hub or cfg.hf_path in LOCAL_BUILDERS else os.path.abspath(cfg.hf_path),
        "hf_name": cfg.hf_name,
        "hf_split": cfg.hf_split,
        "text_field": cfg.text_field,
        "data_files": content,
    }
    fp = stable_hash(ident)
    info = {**ident, "hub": hub, "streaming": cfg.hf_streaming, "corpus_fingerprint": fp}
    if data_files:
        info["files"] = data_files
    hf_cache = None if hub else str(Path(cfg.cache_dir) / "hf_datasets")  # local: arrow files go here

    def read() -> Iterator[tuple[str, str, str]]:
        if hub and (reason := hub_offline_reason()):
            raise ConfigError(
                f"data.hf_path: {cfg.hf_path!r} needs the Hugging Face Hub, which is unreachable ({reason}); "
                "use data=stdlib or data=text, or data.hf_path=text|json with local data.files"
            )
        import datasets  # slow to import; only when a dataset is actually read

        try:
            ds = datasets.load_dataset(
                cfg.hf_path,
                cfg.hf_name or None,
                split=cfg.hf_split,
                streaming=cfg.hf_streaming,
                data_files=data_files,
                cache_dir=hf_cache,
            )
        except Exception as e:  # any loader failure is a bad data.* setting from the user's side
            call = f"load_dataset({cfg.hf_path!r}, {cfg.hf_name or None!r}, split={cfg.hf_split!r})"
            raise ConfigError(f"data.hf_path: {call} failed: {one_line(e)}") from e
        columns = ds.column_names
        if columns is not None and cfg.text_field not in columns:
            raise ConfigError(
                f"data.text_field: {cfg.text_field!r} is not a column of {cfg.hf_path!r}; columns: "
                f"{', '.join(columns)}"
            )
        if columns is not None:
            ds = ds.select_columns([cfg.text_field])
        row = 0
        for batch in ds.iter(batch_size=1000):
            if cfg.text_field not in batch:
                raise ConfigError(
                    f"data.text_field: {cfg.text_field!r} is not a column of {cfg.hf_path!r}; columns: "
                    f"{', '.join(batch)}"
                )
            for text in batch[cfg.text_field]:
                if isinstance(text, str):
                    yield f"row {row}", text_hash(text), text
                row += 1

    return "hf", fp, info, read
