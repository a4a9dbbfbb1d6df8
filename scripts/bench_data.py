"""Benchmark the data paths: real text (building a token cache from scratch: corpus read, tokenizer
training, tokenization, checksums; loading it again; sampling training batches), and the gpu preset's
synthetic batches against the training step they feed.

    .venv/bin/python scripts/bench_data.py                       # data=stdlib, batch 16 x 64; then gpu_*
    .venv/bin/python scripts/bench_data.py vocab_size=4096 batch_size=32 repeats=2000 gpu_steps=2

Arguments are `key=value` overrides of configs/data/stdlib.yaml (any DataConfig field), plus
`batch_size` and `repeats` for the sampling benchmark and `gpu_steps` for the training steps timed. The
cache is built in a fresh temporary directory (removed at the end), so the build is always cold.
The gpu_* lines, on this CPU with one torch thread: the gpu preset's 128 x 256-token batch made on the
host (numpy, what a cpu trains on) and by the device walk a GPU uses (torch, here on the cpu device),
each the mean ms per batch over one device walk's batches; and, at the ladder's smallest width,
the share of a training step spent waiting for data (scripts/gpu_check.py `data_wait`: 1 - tokens/s with
the source's batches / tokens/s with one batch repeated, on 2 x gpu_steps steps each).
Prints `key=value` lines.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness.config import DataConfig  # noqa: E402
from harness.data import make_source  # noqa: E402
from harness.data.synthetic import CHUNK_SEQS, DEVICE_CHUNKS  # noqa: E402
from harness.device import resolve_device  # noqa: E402


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    batch_size = int(args.pop("batch_size", 16))
    repeats = int(args.pop("repeats", 1000))
    gpu_steps = int(args.pop("gpu_steps", 3))
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
    for k, v in gpu_batches(gpu_steps).items():
        print(f"gpu_{k}={v}")


def gpu_batches(steps: int) -> dict:
    """The gpu preset's batches on this CPU (module docstring): ms per batch made on the host and by the
    device walk, and the data-wait share of the smallest width's training step."""
    import torch
    from gpu_check import GPU, compose_mode, data_wait, ladder_sizes, measure_spec

    torch.set_num_threads(1)
    cfg = compose_mode(GPU, "cpu")
    source = make_source(cfg.data)
    spec = measure_spec(cfg, ladder_sizes(cfg)[0], steps, source, "fp32")
    batches = DEVICE_CHUNKS * CHUNK_SEQS // spec.batch_size  # one device walk's worth
    host = timed(lambda step: source.train_batch(step, spec.batch_size, 0), batches)
    walk = timed(lambda step: source.device_batch(step, spec.batch_size, 0, torch.device("cpu")), batches)
    dev = resolve_device(replace(cfg.train, compile=False), threads=1)
    wait = data_wait(spec, source, dev, batches)
    return {
        "batch": f"{spec.batch_size}x{cfg.data.seq_len}",
        "batch_ms_host": round(1e3 * host, 3),
        "batch_ms_device_walk": round(1e3 * walk, 3),
        "width": spec.shape.width,
        "step_ms": round(1e3 * spec.batch_size * cfg.data.seq_len / wait["tokens_per_s"], 1),
        "data_wait_share": round(wait["wait_share"], 4),
    }


def timed(make, batches: int) -> float:
    """Seconds per batch of make(0 .. batches - 1): the mean over one pass (a chunk or a walk is made
    once for many batches, so a median would hide it)."""
    t0 = time.perf_counter()
    for step in range(batches):
        make(step)
    return (time.perf_counter() - t0) / batches


if __name__ == "__main__":
    main(sys.argv[1:])
