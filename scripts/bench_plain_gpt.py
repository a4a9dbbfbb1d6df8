"""A plain nanoGPT-style GPT and its training loop against the harness's training step, same shape.

    .venv/bin/python scripts/bench_plain_gpt.py                 # 4 layers, width 128, block 64, batch 12
    .venv/bin/python scripts/bench_plain_gpt.py steps=100 repeats=5 threads=1

The plain side is written for this benchmark after Karpathy's nanoGPT (`model.py`, `train.py`): its
GPT (pre-LayerNorm blocks, fused qkv, causal `scaled_dot_product_attention`, exact GELU MLP of 4 x
width, learned positions, the LM head tied to the token table, biases, GPT-2's init) and its loop
(random windows of a token array, warmup + cosine LR, forward with the loss inside, backward, clip
1.0, AdamW with decay on matrices only, zero_grad). The harness side is `harness.train.train_run` on
the gpt2 family of the same shape (tied embeddings, heads of model.head_dim = 16 on both sides), with
its data source, LR schedule, clipping, divergence check and eval bookkeeping, W&B off. Both read the
synthetic source's tokens and alternate, `repeats` times; each times its second `steps` steps (the
first `steps` warm up; the harness's eval between them is excluded). Printed as `key=value` (medians):
tokens/s of each, `ratio` = harness / plain (>= 1: the harness step is at least as fast), each side's
last training loss, and the machine's load (`scripts/bench.py`'s check).
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from bench import machine_state  # noqa: E402

from harness.config import Config, DataConfig, ModelConfig, SweepConfig, TrainConfig  # noqa: E402
from harness.data import TokenSource, make_source  # noqa: E402
from harness.device import resolve_device  # noqa: E402
from harness.plan import RunSpec, plan_runs  # noqa: E402
from harness.store import read_metrics  # noqa: E402
from harness.tracking.wandb_run import NullLogger  # noqa: E402
from harness.train import train_run  # noqa: E402


@dataclass(frozen=True)
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 256
    n_layer: int = 4
    n_head: int = 8
    n_embd: int = 128


class CausalSelfAttention(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd)
        self.n_head = c.n_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, d))


class Block(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(c.n_embd), nn.LayerNorm(c.n_embd)
        self.attn = CausalSelfAttention(c)
        self.c_fc, self.c_proj = nn.Linear(c.n_embd, 4 * c.n_embd), nn.Linear(4 * c.n_embd, c.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(c.vocab_size, c.n_embd), nn.Embedding(c.block_size, c.n_embd)
        self.h = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def harness_spec(width: int, depth: int, block: int, batch: int, steps: int) -> tuple[RunSpec, TokenSource]:
    """The harness run of the benchmark's shape: gpt2, tied embeddings, 2 x steps steps, two evals."""
    cfg = Config(
        model=ModelConfig(family="gpt2", aspect=width // depth, head_dim=16, tie_embeddings=True),
        data=DataConfig(seq_len=block, vocab_size=256, val_tokens=4096),
        train=TrainConfig(lr=1e-3, lr_rule="constant", batch_size=batch, evals=2, device="cpu"),
        sweep=SweepConfig(widths=[width], tokens=[2 * steps * batch * block]),
    )
    source = make_source(cfg.data)
    (spec,) = plan_runs(
        cfg, vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision="fp32"
    )
    assert spec.shape.depth == depth and spec.steps == 2 * steps
    return spec, source


def harness_tokens_per_s(spec: RunSpec, source: TokenSource, dev) -> tuple[float, float]:
    """Tokens/s of the run's second half, by its own throughput meter, and its last train loss."""
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        train_run(spec, source, Path(tmp), NullLogger(), dev)
        last = read_metrics(Path(tmp))[-1]
    return last["perf/tokens_per_s"], last["train/loss"]


def plain_tokens_per_s(spec: RunSpec, data: np.ndarray, steps: int) -> tuple[float, float]:
    """nanoGPT's loop on its GPT: tokens/s of its second `steps` steps and its last loss."""
    block, batch, lr, warmup = spec.shape.seq_len, spec.batch_size, spec.peak_lr, spec.warmup_steps
    torch.manual_seed(0)
    c = GPTConfig(block, spec.shape.vocab_size, spec.shape.depth, spec.shape.n_heads, spec.shape.width)
    model = GPT(c)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), fused=True)

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(data) - block, (batch,))
        x = torch.stack([torch.from_numpy(data[i : i + block].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + block].astype(np.int64)) for i in ix])
        return x, y

    def get_lr(it: int) -> float:
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        ratio = (it - warmup) / (2 * steps - warmup)
        return 0.1 * lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * 0.9 * lr

    for it in range(2 * steps):
        if it == steps:
            t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = get_lr(it)
        x, y = get_batch()
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    elapsed = time.perf_counter() - t0
    return steps * batch * block / elapsed, loss.item()


def main(argv: list[str]) -> None:
    args = {k: int(v) for k, v in (a.split("=", 1) for a in argv)}
    steps, repeats, threads = args.get("steps", 100), args.get("repeats", 5), args.get("threads", 1)
    width, depth, block, batch = (
        args.get(k, d) for k, d in (("width", 128), ("depth", 4), ("block", 64), ("batch", 12))
    )
    state = machine_state(threads)
    spec, source = harness_spec(width, depth, block, batch, steps)
    dev = resolve_device(spec.train, threads)
    data = np.concatenate([source.train_batch(s, 512, 1)[0].ravel() for s in range(8)])  # ~262k tokens
    harness, plain, losses = [], [], {}
    for _ in range(repeats):
        tps, losses["harness_loss"] = harness_tokens_per_s(spec, source, dev)
        harness.append(tps)
        tps, losses["plain_loss"] = plain_tokens_per_s(spec, data, steps)
        plain.append(tps)
    h, p = statistics.median(harness), statistics.median(plain)
    fields = {
        "width": width, "depth": depth, "block": block, "batch": batch, "threads": threads, "steps": steps,
        "repeats": repeats, "harness_tok_s": round(h), "plain_tok_s": round(p), "ratio": round(h / p, 3),
        **{k: round(v, 3) for k, v in losses.items()}, **state.fields(machine_state(threads)),
    }  # fmt: skip
    print(" ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
