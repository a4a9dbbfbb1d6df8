"""Which tokenizer and shape a text ladder can afford: the smallest size must not be mostly embedding and
LM head, and the lowest budget that holds 5 sizes sets the price of the whole design (docs/text_sweep.md).

    python scripts/text_ladder.py [--vocab 384 512 768 1024] [--depth 2 3 4] [--decades 2.5]

Tokenizers: raw bytes (256 ids) and a byte-level BPE of each --vocab size, each built on the embedded
stdlib corpus's training split exactly as `data=stdlib` builds it (cached under HARNESS_CACHE), which gives
the measured training tokens. Shapes: llama, one head, each --depth, the input embedding tied to the head
or not. For each tokenizer and shape, one key=value line:
  width, params, embed_share, head_flops_share   the smallest even width of WIDTHS whose embedding (and
      untied head) is under half the parameters and whose LM head is under half the FLOPs per token
      (full count), its total parameters and both shares
  lowest_budget   the smallest budget, on a grid of eighth decades, at which >= 5 sizes of the ladder
      (WIDTHS from that width on) train 5-500 tokens per parameter (harness.plan)
  minutes, runs, epochs   for the design from there over --decades decades, budgets a quarter decade
      apart, the preset's replicates: the start screen's estimate (cpu, 2 runs at once, one core's peak
      --peak, fixed so that a loaded machine does not change the table), the runs, and
      the largest run's passes over the training tokens
  max_step   the largest parameter ratio between neighbouring widths of that ladder
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness.config import Config, DataConfig, ModelConfig  # noqa: E402
from harness.data import make_source  # noqa: E402
from harness.estimate import cpu_throughput, estimate_seconds  # noqa: E402
from harness.flops import flops_per_token  # noqa: E402
from harness.models import param_counts, shape_for_width  # noqa: E402
from harness.plan import plan_runs  # noqa: E402

WIDTHS = (6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 38, 44, 52, 60, 70, 80, 96, 112, 128, 144, 160, 176, 192)
SEQ_LEN = 64
MIN_SIZES = 5
WINDOW = (5.0, 500.0)
PEAK = 1.07e11  # one core's fp32 matmul peak, measured on the quiet 2-core machine (docs/default_sweep.md)


def head_flops_share(shape) -> float:
    """The LM head's share of the full-count FLOPs per token (3 x 2 x width x vocab of them)."""
    return 6 * shape.width * shape.vocab_size / flops_per_token(shape, "full")


def smallest_width(model: ModelConfig, vocab: int) -> int | None:
    """The smallest even width of WIDTHS at which neither the embedding nor the head is most of the model."""
    for w in WIDTHS:
        shape = shape_for_width(w, model, vocab, SEQ_LEN)
        p = param_counts(shape)
        if p.embedding < p.total / 2 and head_flops_share(shape) < 0.5:
            return w
    return None


def design(model: ModelConfig, vocab: int, first: int, low: float, decades: float) -> Config:
    """The isoflop design from budget `low` over `decades` decades, a quarter decade apart, on WIDTHS from
    `first`, with the cpu preset's window, batch rule and replicates."""
    cfg = Config()
    budgets = [low * 10 ** (k / 4) for k in range(round(decades * 4) + 1)]
    mid = [budgets[len(budgets) // 4], budgets[len(budgets) * 5 // 8]]  # inside the fit, below the hold-out
    sweep = replace(
        cfg.sweep,
        design="isoflop",
        widths=[w for w in WIDTHS if w >= first],
        flops=budgets,
        min_tokens_per_param=WINDOW[0],
        max_tokens_per_param=WINDOW[1],
        seeds=[1, 2],
        replicate_budgets=mid,
        replicate_tokens_per_param=30,
    )
    train = replace(cfg.train, batch_size=60, batch_exponent=0.5, min_steps=200, evals=1)
    return replace(cfg, model=model, sweep=sweep, train=train, data=replace(cfg.data, seq_len=SEQ_LEN))


def sizes_at(model: ModelConfig, vocab: int, first: int, budget: float) -> int:
    cfg = design(model, vocab, first, budget, 0)
    try:
        runs = plan_runs(cfg, vocab_size=vocab, data_fingerprint="ladder", precision="fp32")
    except Exception:  # the budget is too small for the smallest model
        return 0
    return len({r.shape.width for r in runs})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, nargs="+", default=[384, 512, 768, 1024])
    ap.add_argument("--depth", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--decades", type=float, default=2.5)
    ap.add_argument("--peak", type=float, default=PEAK, help="one core's fp32 matmul FLOP/s")
    args = ap.parse_args()
    device = cpu_throughput(args.peak)
    cache = os.environ.get("HARNESS_CACHE", ".cache/harness")
    tokenizers = [("bytes", 256)] + [("bpe", v) for v in args.vocab]
    for kind, vocab in tokenizers:
        source = make_source(DataConfig(source="stdlib", tokenizer=kind, vocab_size=vocab, cache_dir=cache))
        train_tokens = source.train_tokens
        chars = source.info["chars"]["train"]
        print(f"tokenizer={kind} vocab={vocab} train_tokens={train_tokens} chars_per_token={chars / train_tokens:.3f}")
        for depth in args.depth:
            for tied in (False, True):
                model = ModelConfig(depth=depth, n_heads=1, tie_embeddings=tied)
                first = smallest_width(model, vocab)
                head = f"  tokenizer={kind} vocab={vocab} depth={depth} tied={str(tied).lower()}"
                if first is None:
                    print(f"{head} width=none")
                    continue
                shape = shape_for_width(first, model, vocab, SEQ_LEN)
                p = param_counts(shape)
                low = next(
                    10 ** (k / 8) for k in range(64, 120) if sizes_at(model, vocab, first, 10 ** (k / 8)) >= MIN_SIZES
                )
                cfg = design(model, vocab, first, low, args.decades)
                runs = plan_runs(cfg, vocab_size=vocab, data_fingerprint="ladder", precision="fp32")
                seconds, _ = estimate_seconds(runs, device, val_tokens=cfg.data.val_tokens, runs_at_once=2)
                counts = sorted({r.params.total for r in runs})
                step = max(b / a for a, b in zip(counts, counts[1:], strict=False))
                print(
                    f"{head} width={first} params={p.total} embed_share={p.embedding / p.total:.3f} "
                    f"head_flops_share={head_flops_share(shape):.3f} lowest_budget={low:.3g} "
                    f"minutes={seconds / 60:.1f} runs={len(runs)} "
                    f"epochs={max(r.tokens for r in runs) / train_tokens:.2f} max_step={step:.2f}"
                )


if __name__ == "__main__":
    main()
