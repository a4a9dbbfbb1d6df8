"""Benchmark the real-text data path: building a token cache from scratch (corpus read, tokenizer
training, tokenization, checksums), loading it again, and sampling training batches.

    .venv/bin/python scripts/bench_data.py                       # data=stdlib, batch 16 x 64
    .venv/bin/python scripts/bench_data.py vocab_size=4096 batch_size=32 repeats=2000

Arguments are `key=value` overrides of configs/data/stdlib.yaml (any DataConfig field), plus
`batch_size` and `repeats` for the sampling benchmark. The cache is built in a fresh temporary
directory (removed at the end), so the build is always cold. Prints `key=value` lines.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness.config import DataConfig  # noqa: E402
from harness.data import make_source  # noqa: E402


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    batch_size = int(args.pop("batch_size", 16))
    repeats = int(args.pop("repeats", 1000))
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        cfg = OmegaConf.merge(
            OmegaConf.structured(DataConfig),
            OmegaConf.load(ROOT / "configs/data/stdlib.yaml"),
            OmegaConf.from_dotlist([f"{k}={v}" for k, v in args.items()]),
            {"cache_dir": tmp},
        )
        cfg: DataConfig = OmegaConf.to_object(cfg)

        t0 = time.perf_counter()
        source = make_source(cfg)
        build_s = time.perf_counter() - t0
        meta = source.cache.meta
        tokens = sum(f["tokens"] for f in meta["files"].values())
        chars = sum(meta["chars"].values())

        t0 = time.perf_counter()
        again = make_source(cfg)
        load_s = time.perf_counter() - t0
        assert again.info["cache"]["status"] == "loaded"

        times = []
        for step in range(repeats):
            t0 = time.perf_counter()
            source.train_batch(step, batch_size, 0)
            times.append(time.perf_counter() - t0)
        sample_s = statistics.median(times)

        out = {
            "source": cfg.source,
            "python": source.info.get("python", ""),
            "corpus_files": source.info.get("files", ""),
            "corpus_chars": chars,
            "tokenizer": f"{cfg.tokenizer}/{source.vocab_size}",
            "tokens_train": meta["files"]["train"]["tokens"],
            "tokens_val": meta["files"]["val"]["tokens"],
            "chars_per_token": round(chars / tokens, 3),
            "build_s": round(build_s, 2),
            "build_tokenizer_train_s": meta["build_s"]["tokenizer"],
            "build_tokens_per_s": round(tokens / build_s),
            "build_chars_per_s": round(chars / build_s),
            "load_s": round(load_s, 3),
            "batch": f"{batch_size}x{cfg.seq_len}",
            "sample_median_us": round(sample_s * 1e6, 1),
            "sample_tokens_per_s": round(batch_size * cfg.seq_len / sample_s),
        }
        for k, v in out.items():
            print(f"{k}={v}")


if __name__ == "__main__":
    main(sys.argv[1:])
