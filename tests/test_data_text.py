"""Real-text sources: document-level splits, the token cache (reuse, corruption, locking), the
load_dataset path on local files, one-line ConfigErrors for bad inputs, and the batch contract
(stateless per step, noise, a cap on unique tokens) for both the text and the synthetic source."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import harness.data.cache
import harness.data.tokenizer
from harness.config import Config, ConfigError, DataConfig, SyntheticConfig
from harness.data import make_source
from harness.data.corpus import load_corpus, split_of
from harness.data.synthetic import SyntheticSource
from harness.data.text import TextSource
from harness.plan import check_config

WORDS = ("the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red", "barn", "while")


def _stdlib_cfg(tmp_path: Path, **kw) -> DataConfig:
    kw = {
        "source": "stdlib",
        "vocab_size": 320,
        "max_chars": 150_000,
        "val_fraction": 0.2,
        "val_tokens": 512,
        "cache_dir": str(tmp_path / "cache"),
        **kw,
    }
    return DataConfig(**kw)


def _story(i: int, rng: np.random.Generator) -> str:
    return f"Story {i}: " + " ".join(rng.choice(WORDS, size=int(rng.integers(20, 60)))) + "."


@pytest.fixture
def text_files(tmp_path: Path) -> dict[str, Path]:
    """A .txt file with one story per line (paragraph per blank line) and a .jsonl file."""
    rng = np.random.default_rng(0)
    stories = [_story(i, rng) for i in range(300)]
    lines = tmp_path / "stories.txt"
    lines.write_text("\n".join(stories) + "\n")
    paragraphs = tmp_path / "paragraphs.txt"
    paragraphs.write_text("\n\n".join(stories) + "\n")
    jsonl = tmp_path / "stories.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "text": s}) + "\n" for i, s in enumerate(stories)))
    return {"lines": lines, "paragraphs": paragraphs, "jsonl": jsonl, "stories": stories}


def _text_cfg(tmp_path: Path, files, **kw) -> DataConfig:
    kw = {
        "source": "text",
        "files": [str(f) for f in files],
        "tokenizer": "bytes",
        "vocab_size": 256,
        "val_fraction": 0.2,
        "val_tokens": 512,
        "seq_len": 32,
        "cache_dir": str(tmp_path / "cache"),
        **kw,
    }
    return DataConfig(**kw)


# --- splits ------------------------------------------------------------------------------------------


def test_stdlib_split_is_by_file_and_stable(tmp_path):
    cfg = _stdlib_cfg(tmp_path, max_chars=400_000)
    docs = list(load_corpus(cfg).documents())
    names = [d.name for d in docs]
    assert len(names) == len(set(names)), "a file was read twice (split inside a file?)"
    train = {d.name for d in docs if d.split == "train"}
    val = {d.name for d in docs if d.split == "val"}
    assert train and val and not train & val
    assert all(n.endswith(".py") and "site-packages" not in n and "/test/" not in f"/{n}" for n in names)
    # the split of a file is a function of (seed, path) alone: a different cap does not move it
    for d in load_corpus(_stdlib_cfg(tmp_path, max_chars=100_000)).documents():
        assert d.split == split_of(d.name, cfg.seed, cfg.val_fraction)
    share = np.mean([split_of(f"mod{i}.py", 0, 0.2) == "val" for i in range(4000)])
    assert 0.17 < share < 0.23


def test_stdlib_info_records_python_and_fingerprint(tmp_path):
    import platform

    src = make_source(_stdlib_cfg(tmp_path))
    assert src.info["python"] == platform.python_version()
    assert len(src.info["corpus_fingerprint"]) == 16 and src.info["files"] > 100
    assert src.bayes_loss is None and src.train_tokens == src.info["tokens"]["train"]
    x, y = src.val_set()
    assert x.shape[1] == src.seq_len and (x[:, 1:] == y[:, :-1]).all()
    assert x.min() >= 0 and x.max() < src.vocab_size


def test_text_split_by_document_hash(tmp_path, text_files):
    corpus = load_corpus(_text_cfg(tmp_path, [text_files["jsonl"]]))
    docs = list(corpus.documents())
    assert [d.text for d in docs] == text_files["stories"]
    n_val = sum(d.split == "val" for d in docs)
    assert 30 < n_val < 90  # ~20% of 300 documents
    # the same document gets the same split wherever it sits: shuffling the file keeps each split
    shuffled = tmp_path / "shuffled.jsonl"
    rows = text_files["jsonl"].read_text().splitlines(keepends=True)
    shuffled.write_text("".join(rows[::-1]))
    again = {d.text: d.split for d in load_corpus(_text_cfg(tmp_path, [shuffled])).documents()}
    assert again == {d.text: d.split for d in docs}


# --- the token cache ---------------------------------------------------------------------------------


def _forbid_tokenizing(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("tokenized although the cache was valid")

    monkeypatch.setattr(harness.data.tokenizer.Tokenizer, "encode_batch", boom)
    monkeypatch.setattr(harness.data.tokenizer, "train_bpe", boom)
    monkeypatch.setattr(harness.data.cache, "build_tokenizer", boom)


def test_cache_reused_without_tokenizing(tmp_path, monkeypatch):
    cfg = _stdlib_cfg(tmp_path)
    first = make_source(cfg)
    assert first.info["cache"]["status"] == "built"
    meta = json.loads((Path(first.info["cache"]["path"]) / "meta.json").read_text())
    assert meta["dtype"] == "uint16" and meta["tokenizer"]["kind"] == "bpe"
    assert set(meta["files"]) == {"train", "val"} and all(
        len(f["sha256"]) == 64 for f in meta["files"].values()
    )
    _forbid_tokenizing(monkeypatch)
    second = make_source(cfg)
    assert second.info["cache"]["status"] == "loaded"
    assert second.fingerprint == first.fingerprint
    np.testing.assert_array_equal(second.train_batch(5, 8, 1)[0], first.train_batch(5, 8, 1)[0])
    # a different seq_len reuses the same token cache (it is not part of the key) ...
    third = make_source(_stdlib_cfg(tmp_path, seq_len=32))
    assert (
        third.info["cache"]["path"] == first.info["cache"]["path"] and third.fingerprint != first.fingerprint
    )
    # ... and the saved tokenizer is a transformers tokenizer
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(first.info["tokenizer"]["path"])
    assert hf.decode(first.val_set()[0][0].tolist()) == first.tokenizer().decode(first.val_set()[0][0])


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_damaged_cache_is_detected_and_rebuilt(tmp_path, caplog, damage):
    cfg = _text_cfg(tmp_path, [tmp_path / "a.txt"])
    (tmp_path / "a.txt").write_text("\n\n".join(f"paragraph {i} " * 20 for i in range(200)))
    first = make_source(cfg)
    before = np.array(first.cache.train)  # a copy: the damage below pulls the file from under the memmap
    path = Path(first.info["cache"]["path"])
    train = path / "train.bin"
    if damage == "truncate":
        with open(train, "r+b") as f:
            f.truncate(train.stat().st_size - 10)
    elif damage == "flip":
        data = bytearray(train.read_bytes())
        data[len(data) // 2] ^= 0xFF
        train.write_bytes(bytes(data))
    else:
        (path / "meta.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="harness.data.cache"):
        second = make_source(cfg)
    assert second.info["cache"]["status"].startswith("rebuilt")
    assert "rebuilding" in caplog.text and str(path) in caplog.text
    np.testing.assert_array_equal(np.asarray(second.cache.train), before)
    assert make_source(cfg).info["cache"]["status"] == "loaded"


def test_concurrent_loads_build_once(tmp_path, monkeypatch, text_files):
    cfg = _text_cfg(tmp_path, [text_files["paragraphs"]])
    builds = []
    real = harness.data.cache.write_tokens

    def counting(*a, **k):
        builds.append(1)
        time.sleep(0.3)  # keep the lock held while the other thread arrives
        return real(*a, **k)

    monkeypatch.setattr(harness.data.cache, "write_tokens", counting)
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(make_source(cfg))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 2 and len(builds) == 1
    assert sorted(s.info["cache"]["status"] for s in out) == ["built", "loaded"]
    assert not [p for p in Path(cfg.cache_dir).iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_large_vocab_uses_uint32(tmp_path, text_files):
    cfg = _text_cfg(tmp_path, [text_files["paragraphs"]], tokenizer="bpe", vocab_size=70_000)
    src = make_source(cfg)
    assert src.info["cache"]["dtype"] == "uint32" and src.vocab_size == 70_000


# --- the load_dataset path on local files -------------------------------------------------------------


@pytest.mark.parametrize(("builder", "key", "streaming"), [("text", "lines", False), ("json", "jsonl", True)])
def test_hf_loader_on_local_files(tmp_path, text_files, builder, key, streaming):
    cfg = _text_cfg(
        tmp_path,
        [text_files[key]],
        source="hf",
        hf_path=builder,
        hf_streaming=streaming,
        tokenizer="bpe",
        vocab_size=300,
    )
    src = make_source(cfg)
    assert src.name == "hf" and not src.info["hub"]
    assert sum(src.info["documents"].values()) == 300  # one document per line / record
    assert src.info["documents"]["val"] > 20
    text = src.tokenizer().decode(np.asarray(src.cache.train))
    assert text_files["stories"][0] in text or text_files["stories"][1] in text
    x, y = src.train_batch(0, 4, 0)
    assert x.shape == (4, 32) and (x[:, 1:] == y[:, :-1]).all()
    # local files are content-hashed: the same data under another name hits the same cache
    copy = tmp_path / f"copy{text_files[key].suffix}"
    copy.write_bytes(text_files[key].read_bytes())
    again = make_source(
        _text_cfg(
            tmp_path,
            [copy],
            source="hf",
            hf_path=builder,
            hf_streaming=streaming,
            tokenizer="bpe",
            vocab_size=300,
        )
    )
    assert again.info["cache"]["status"] == "loaded" and again.fingerprint == src.fingerprint


def test_text_source_reads_paragraphs_and_jsonl(tmp_path, text_files):
    src = make_source(_text_cfg(tmp_path, [text_files["paragraphs"], str(tmp_path / "*.jsonl")]))
    assert sum(src.info["documents"].values()) == 600
    assert src.vocab_size == 256 and src.info["tokenizer"]["eos_id"] == 0
    raw = bytes(np.asarray(src.cache.train).astype(np.uint8))
    assert all(len(doc) > 0 for doc in raw.split(b"\x00")[:-1])  # bytes: NUL ends each document


# --- one-line ConfigErrors ------------------------------------------------------------------------------


def _one_line_error(cfg: DataConfig, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as e:
        make_source(cfg)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("data.")
    return msg


def test_missing_file(tmp_path):
    msg = _one_line_error(_text_cfg(tmp_path, [tmp_path / "nope.txt"]), "does not exist")
    assert "nope.txt" in msg
    _one_line_error(_text_cfg(tmp_path, [str(tmp_path / "*.md")]), "matches no file")


def test_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    assert "empty.txt" in _one_line_error(_text_cfg(tmp_path, [tmp_path / "empty.txt"]), "is empty")
    _one_line_error(_text_cfg(tmp_path, [tmp_path / "blank.txt"]), "is empty")


def test_non_text_file(tmp_path):
    (tmp_path / "weights.txt").write_bytes(np.arange(4096, dtype=np.float32).tobytes())
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1") * 10)
    assert "weights.txt" in _one_line_error(
        _text_cfg(tmp_path, [tmp_path / "weights.txt"]), "not a text file"
    )
    assert "latin1.txt" in _one_line_error(_text_cfg(tmp_path, [tmp_path / "latin1.txt"]), "not UTF-8")


def test_jsonl_without_the_text_field(tmp_path):
    records = (json.dumps({"body": f"story {i} " * 40}) + "\n" for i in range(50))
    (tmp_path / "d.jsonl").write_text("".join(records))
    _one_line_error(_text_cfg(tmp_path, [tmp_path / "d.jsonl"]), "no string field 'text'")
    src = make_source(_text_cfg(tmp_path, [tmp_path / "d.jsonl"], text_field="body"))  # data.text_field=body
    assert sum(src.info["documents"].values()) == 50


def test_hub_dataset_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = DataConfig(source="hf", hf_path="roneneldan/TinyStories", vocab_size=512, cache_dir=str(tmp_path))
    t0 = time.perf_counter()
    msg = _one_line_error(cfg, "unreachable")
    assert time.perf_counter() - t0 < 5
    assert msg.startswith("data.hf_path: 'roneneldan/TinyStories' needs the Hugging Face Hub")
    assert "HF_HUB_OFFLINE" in msg


def test_pretrained_tokenizer_offline_fails_fast(tmp_path, monkeypatch, text_files):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = _text_cfg(
        tmp_path, [text_files["lines"]], tokenizer="pretrained", tokenizer_name="no-such/tokenizer-xyz"
    )
    msg = _one_line_error(cfg, "unreachable")
    assert msg.startswith("data.tokenizer_name:")


def test_pretrained_tokenizer_from_local_dir(tmp_path, text_files):
    """tokenizer=pretrained by path: the BPE saved beside one cache serves another source."""
    bpe = make_source(_text_cfg(tmp_path, [text_files["paragraphs"]], tokenizer="bpe", vocab_size=300))
    src = make_source(
        _text_cfg(
            tmp_path,
            [text_files["jsonl"]],
            tokenizer="pretrained",
            tokenizer_name=bpe.info["tokenizer"]["path"],
        )
    )
    assert src.info["tokenizer"]["fingerprint"] == bpe.info["tokenizer"]["fingerprint"]
    assert src.vocab_size <= 300


def test_validate_data_settings():
    def check(match, **data):
        cfg = Config(data=DataConfig(**data))
        with pytest.raises(ConfigError, match=match):
            check_config(cfg)

    check("data.vocab_size", source="stdlib", tokenizer="bpe", vocab_size=256)
    check("data.max_unique_tokens", max_unique_tokens=10)
    check("data.tokenizer_train_chars", tokenizer_train_chars=-1)
    check("data.files", source="text")


# --- the batch contract --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stdlib_cache(tmp_path_factory) -> str:
    cache_dir = tmp_path_factory.mktemp("stdlib")
    make_source(_stdlib_cfg(cache_dir))
    return str(cache_dir)


def _stdlib(cache_root: str, **kw) -> TextSource:
    return make_source(_stdlib_cfg(Path(cache_root), **kw))


def _synthetic(**kw) -> SyntheticSource:
    syn = SyntheticConfig(n_skills=8, branching=3)
    return SyntheticSource(DataConfig(vocab_size=32, seq_len=16, val_tokens=256, synthetic=syn, **kw))


def test_train_batch_is_a_function_of_seed_and_step(stdlib_cache):
    a, b = _stdlib(stdlib_cache), _stdlib(stdlib_cache)
    later = a.train_batch(7, 16, seed=3)
    a.train_batch(0, 16, seed=3)  # order of calls does not matter
    np.testing.assert_array_equal(later[0], b.train_batch(7, 16, seed=3)[0])
    np.testing.assert_array_equal(later[1], b.train_batch(7, 16, seed=3)[1])
    assert not np.array_equal(later[0], a.train_batch(8, 16, seed=3)[0])
    assert not np.array_equal(later[0], a.train_batch(7, 16, seed=4)[0])
    x, y = later
    assert x.shape == y.shape == (16, a.seq_len) and x.dtype == np.int64
    assert (x[:, 1:] == y[:, :-1]).all()
    # every window is a stretch of the training split
    train = np.asarray(a.cache.train)
    for row in np.concatenate([x, y[:, -1:]], axis=1)[:4]:
        hits = np.flatnonzero(train[: len(train) - a.seq_len] == row[0])
        assert any((train[h : h + a.seq_len + 1] == row).all() for h in hits)


def test_noise_fraction(stdlib_cache):
    clean, noisy = _stdlib(stdlib_cache), _stdlib(stdlib_cache, noise_fraction=0.3)
    assert noisy.fingerprint != clean.fingerprint
    np.testing.assert_array_equal(noisy.val_set()[0], clean.val_set()[0])  # validation stays clean
    changed = []
    for step in range(20):
        (cx, cy), (nx, ny) = clean.train_batch(step, 16, 0), noisy.train_batch(step, 16, 0)
        assert (nx[:, 1:] == ny[:, :-1]).all()  # one corrupted stream: inputs and targets agree
        changed.append(np.mean(np.concatenate([cx, cy[:, -1:]], 1) != np.concatenate([nx, ny[:, -1:]], 1)))
        assert nx.max() < noisy.vocab_size
    expected = 0.3 * (1 - 1 / noisy.vocab_size)
    assert abs(np.mean(changed) - expected) < 0.02


def test_max_unique_tokens(stdlib_cache):
    seq_len, cap = 64, 64 + 8  # only 8 window start positions fit in the first 72 tokens
    src = _stdlib(stdlib_cache, max_unique_tokens=cap)
    assert src.train_tokens == cap
    prefix = np.asarray(src.cache.train[:cap], dtype=np.int64)
    allowed = {tuple(prefix[s : s + seq_len]) for s in range(cap - seq_len)}
    rows = {tuple(r) for step in range(30) for r in src.train_batch(step, 16, 0)[0]}
    assert rows <= allowed and len(rows) == len(allowed)


def test_synthetic_noise_keeps_exact_bayes_loss():
    clean, noisy = _synthetic(), _synthetic(noise_fraction=0.25)
    assert noisy.bayes_loss == clean.bayes_loss and noisy.fingerprint != clean.fingerprint
    np.testing.assert_array_equal(noisy.val_set()[0], clean.val_set()[0])
    cx, (nx, ny) = clean.train_batch(3, 64, 0)[0], noisy.train_batch(3, 64, 0)
    assert (nx[:, 1:] == ny[:, :-1]).all()
    assert abs(np.mean(cx != nx) - 0.25 * (1 - 1 / 32)) < 0.03
    np.testing.assert_array_equal(noisy.train_batch(3, 64, 0)[0], nx)


def test_synthetic_max_unique_tokens():
    src = _synthetic(max_unique_tokens=4 * 16)
    assert src.train_tokens == 64
    rows = {tuple(r) for step in range(10) for r in src.train_batch(step, 3, 0)[0]}
    assert len(rows) == 4
    free = _synthetic()
    np.testing.assert_array_equal(
        src.train_batch(0, 4, 0)[0], free.train_batch(0, 4, 0)[0]
    )  # the stream's prefix
    assert free.train_tokens is None
