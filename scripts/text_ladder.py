"""Which tokenizer and shape a text ladder can afford: the smallest size must not be mostly embedding and
LM head, and the lowest budget that holds 5 sizes sets the price of the whole design (docs/text_sweep.md).

    python scripts/text_ladder.py                                  # sweep=cpu_text's candidates
    python scripts/text_ladder.py --preset gpu_text --tokenizers bpe:2048 bpe:4096 bpe:8192 --depth 0 \
        --decades 3 --per-decade 3 --device "H100 SXM"

Tokenizers (`bytes`, `bpe:<ids>`): with `--corpus stdlib` each is built on the embedded stdlib corpus's
training split exactly as `data=stdlib` builds it (cached under HARNESS_CACHE), which gives the measured
training tokens; with `--corpus none` only the vocabulary counts. Shapes: the preset's family, heads
and width rule at each --depth (0: round(width / model.aspect), the gpu presets' rule), the input
embedding tied to the LM head or not.
For each tokenizer and shape, one key=value line:
  width, params, embed_share, head_flops_share   the smallest width of the preset's candidates whose
      embedding (and untied head) is under half the parameters and whose LM head is under half the
      FLOPs per token (full count), its total parameters and both shares
  lowest_budget   the smallest budget, on a grid of eighth decades, at which >= 5 sizes of the ladder
      (the candidates from that width on) fall inside the preset's tokens-per-parameter window
  minutes, runs, epochs   for the design from there over --decades decades, --per-decade budgets a
      decade, the preset's batch rule and replicates: the estimate on --device (cpu: 2 runs at once
      at one core's peak --peak, fixed so that a loaded machine does not change the table), the runs,
      and the largest run's passes over the training tokens (with --corpus stdlib)
  max_step   the largest parameter ratio between neighbouring sizes of that design
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness.config import Config, ConfigError, register_configs  # noqa: E402
from harness.data import make_source  # noqa: E402
from harness.estimate import cpu_throughput, estimate_seconds, gpu_throughput  # noqa: E402
from harness.flops import flops_per_token  # noqa: E402
from harness.models import param_counts, shape_for_width  # noqa: E402
from harness.plan import plan_runs  # noqa: E402

# the widths a ladder may start from and grow through, per preset (even; multiples of 16 for heads of 16)
CANDIDATES = {
    "cpu_text": (6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 38, 44, 52, 60, 70, 80, 96, 112, 128, 144, 160),
    "gpu_text": (
        96,
        112,
        128,
        144,
        176,
        192,
        208,
        224,
        256,
        288,
        320,
        352,
        400,
        448,
        496,
        544,
        608,
        672,
        752,
    ),
}
MIN_SIZES = 5
PEAK = 1.07e11  # one core's fp32 matmul peak, measured on the quiet 2-core machine (docs/default_sweep.md)


def head_flops_share(shape) -> float:
    """The LM head's share of the full-count FLOPs per token (3 x 2 x width x vocab of them)."""
    return 6 * shape.width * shape.vocab_size / flops_per_token(shape, "full")


def smallest_width(cfg: Config, widths: tuple[int, ...], vocab: int) -> int | None:
    """The smallest candidate width at which neither the embedding nor the head is most of the model."""
    for w in widths:
        shape = shape_for_width(w, cfg.model, vocab, cfg.data.seq_len)
        p = param_counts(shape)
        if p.embedding < p.total / 2 and head_flops_share(shape) < 0.5:
            return w
    return None


def design(cfg: Config, widths: list[int], low: float, decades: float, per_decade: int) -> Config:
    """The preset's design on `widths` from budget `low` over `decades`, `per_decade` budgets a decade,
    replicated at the budgets a quarter and five eighths of the way up (inside the fit, below the
    hold-out)."""
    budgets = [low * 10 ** (k / per_decade) for k in range(round(decades * per_decade) + 1)]
    mid = [budgets[len(budgets) // 4], budgets[len(budgets) * 5 // 8]]
    return replace(cfg, sweep=replace(cfg.sweep, widths=widths, flops=budgets, replicate_budgets=mid))


def plan(cfg: Config, vocab: int):
    return plan_runs(cfg, vocab_size=vocab, data_fingerprint="ladder", precision="fp32")


def sizes_at(cfg: Config, vocab: int, widths: list[int], budget: float) -> int:
    try:
        runs = plan(design(cfg, widths, budget, 0, 1), vocab)
    except ConfigError:  # the budget is too small for the smallest model
        return 0
    return len({r.shape.width for r in runs})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(CANDIDATES), default="cpu_text")
    ap.add_argument("--tokenizers", nargs="+", default=["bytes", "bpe:384", "bpe:512", "bpe:768", "bpe:1024"])
    ap.add_argument("--depth", type=int, nargs="+", default=[2, 3, 4], help="0: width / model.aspect")
    ap.add_argument("--corpus", choices=("stdlib", "none"), default="stdlib")
    ap.add_argument("--decades", type=float, default=2.5)
    ap.add_argument("--per-decade", type=int, default=4)
    ap.add_argument("--device", default="cpu", help="cpu, or a GPU of harness.flops.PEAK_FLOPS")
    ap.add_argument("--peak", type=float, default=PEAK, help="one core's fp32 matmul FLOP/s (cpu)")
    args = ap.parse_args()
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        base: Config = OmegaConf.to_object(
            compose("config", overrides=[f"sweep={args.preset}", "logger=off"])
        )
    device = cpu_throughput(args.peak) if args.device == "cpu" else gpu_throughput(args.device)
    at_once = 2 if args.device == "cpu" else 1
    cache = os.environ.get("HARNESS_CACHE", ".cache/harness")
    for spec in args.tokenizers:
        kind, _, ids = spec.partition(":")
        vocab = int(ids) if ids else 256
        data = replace(base.data, tokenizer=kind, vocab_size=vocab)
        train_tokens = 0
        if args.corpus == "stdlib":
            source = make_source(replace(data, source="stdlib", cache_dir=cache))
            train_tokens, chars = source.train_tokens, source.info["chars"]["train"]
            print(
                f"tokenizer={kind} vocab={vocab} train_tokens={train_tokens} "
                f"chars_per_token={chars / train_tokens:.3f}"
            )
        for depth in args.depth:
            for tied in (False, True):
                cfg = replace(base, data=data, model=replace(base.model, depth=depth, tie_embeddings=tied))
                head = f"  tokenizer={kind} vocab={vocab} depth={depth or 'rule'} tied={str(tied).lower()}"
                first = smallest_width(cfg, CANDIDATES[args.preset], vocab)
                if first is None:
                    print(f"{head} width=none")
                    continue
                widths = [w for w in CANDIDATES[args.preset] if w >= first]
                shape = shape_for_width(first, cfg.model, vocab, cfg.data.seq_len)
                p = param_counts(shape)
                grid = (10 ** (k / 8) for k in range(64, 160))
                low = next(c for c in grid if sizes_at(cfg, vocab, widths, c) >= MIN_SIZES)
                chosen = design(cfg, widths, low, args.decades, args.per_decade)
                runs = plan(chosen, vocab)
                seconds, _ = estimate_seconds(
                    runs, device, val_tokens=cfg.data.val_tokens, runs_at_once=at_once
                )
                counts = sorted({r.params.total for r in runs})
                step = max(b / a for a, b in zip(counts, counts[1:], strict=False))
                epochs = f" epochs={max(r.tokens for r in runs) / train_tokens:.2f}" if train_tokens else ""
                print(
                    f"{head} width={first} params={p.total} embed_share={p.embedding / p.total:.3f} "
                    f"head_flops_share={head_flops_share(shape):.3f} lowest_budget={low:.3g} "
                    f"minutes={seconds / 60:.1f} runs={len(runs)}{epochs} max_step={step:.2f}"
                )


if __name__ == "__main__":
    main()
