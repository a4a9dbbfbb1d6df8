"""A plain nanoGPT-style GPT and its training loop against the harness's training step, same shape.

    .venv/bin/python scripts/bench_plain_gpt.py                 # 4 layers, width 128, block 64, batch 12
    .venv/bin/python scripts/bench_plain_gpt.py steps=100 repeats=5 threads=1

The plain side is written for this benchmark after Karpathy's nanoGPT (`model.py`, `train.py`): its
GPT (pre-LayerNorm blocks, fused qkv, causal `scaled_dot_product_attention`, GELU MLP of 4 x width,
learned positions, the LM head tied to the token table, biases) and its loop (random windows of a
token array, warmup + cosine LR, forward with the loss inside, backward, clip 1.0, AdamW with decay on
matrices only, zero_grad). The harness side is `harness.train.train_run` on the gpt2 family of the
same shape (tied embeddings, heads of model.head_dim), timed by the run's own throughput meter (its
one eval, at the end, excluded). Both read the harness's synthetic source and alternate, `repeats`
times; the figures are medians. Printed as `key=value`: tokens/s of each and `ratio` = harness tokens/s
/ plain tokens/s (>= 1: the harness step is at least as fast), with the final train loss of each.
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

from harness.config import Config, DataConfig, ModelConfig, SweepConfig, TrainConfig  # noqa: E402
from harness.data import make_source  # noqa: E402
from harness.device import resolve_device  # noqa: E402
from harness.logger import NullLogger  # noqa: E402
from harness.plan import plan_runs  # noqa: E402
from harness.store import read_metrics  # noqa: E402
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
