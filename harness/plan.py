"""Sweep config -> the tuple of runs to train, each with a stable id. Pure: builds no model.

A run id is a hash of everything that changes a run's numbers (shape, steps, batch, LR schedule,
optimiser, seeds, data fingerprint, precision), so results from different settings can never be
mistaken for each other, and an unchanged run is recognised as already done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness import flops
from harness.config import Config, ConfigError, TrainConfig
from harness.data import fingerprint
from harness.schedule import peak_lr, warmup_steps
from harness.shape import ModelShape, ParamCounts, param_counts, shape_for_width

# TrainConfig fields that change how a run is executed or observed, not its numbers.
# An IsoFLOP run must spend its budget to within this share in whole batches, else it is left out.
ISOFLOP_TOLERANCE = 0.1
NON_NUMERIC_TRAIN_FIELDS = ("device", "compile", "threads", "evals", "checkpoint_every", "precision")


@dataclass(frozen=True)
class RunSpec:
    """One planned training run, fully resolved."""

    run_id: str
    shape: ModelShape
    params: ParamCounts
    steps: int
    batch_size: int  # sequences per step
    tokens: int  # training tokens = steps * batch_size * seq_len
    budget: float  # the design's budget this run belongs to: tokens (grid) or FLOPs (isoflop)
    peak_lr: float
    warmup_steps: int
    flops_per_token: float  # full convention, forward + backward
    flops_per_token_6n: float  # Kaplan: 6 * N_nonembedding
    precision: str  # resolved: fp32 | bf16
    train: TrainConfig

    @property
    def flops(self) -> float:
        return self.flops_per_token * self.tokens

    @property
    def name(self) -> str:
        return f"w{self.shape.width}-d{self.shape.depth}-t{self.tokens}"

    def planned_row(self) -> dict:
        """The results-table columns known before training (see store.RESULT_COLUMNS)."""
        return {
            "run_id": self.run_id,
            "width": self.shape.width,
            "depth": self.shape.depth,
            "n_heads": self.shape.n_heads,
            "params_total": self.params.total,
            "params_embedding": self.params.embedding,
            "params_nonembedding": self.params.nonembedding,
            "tokens": self.tokens,
            "budget": self.budget,
            "flops": self.flops,
            "flops_6n": self.flops_per_token_6n * self.tokens,
            "flops_per_token": self.flops_per_token,
            "flops_per_token_6n": self.flops_per_token_6n,
            "peak_lr": self.peak_lr,
            "steps": self.steps,
        }

    def to_dict(self) -> dict:
        """JSON-ready record with the derived numbers (params by convention, FLOPs per token, ...)."""
        d = asdict(self)
        d["flops"] = self.flops
        d["flops_6n"] = self.planned_row()["flops_6n"]
        d["tokens_per_param"] = self.tokens / self.params.total
        d["name"] = self.name
        return d


def plan_runs(cfg: Config, *, vocab_size: int, data_fingerprint: str, precision: str) -> tuple[RunSpec, ...]:
    """Every run of the sweep: grid (width x tokens) or isoflop (FLOPs budget x width)."""
    s, t, seq_len = cfg.sweep, cfg.train, cfg.data.seq_len
    tokens_per_step = t.batch_size * seq_len
    shapes = [shape_for_width(w, cfg.model, vocab_size, seq_len) for w in sorted(s.widths)]
    numeric_train = {k: v for k, v in asdict(t).items() if k not in NON_NUMERIC_TRAIN_FIELDS}
    runs = []
    for shape in shapes:
        fpt = flops.flops_per_token(shape, "full")
        if s.design == "grid":
            pairs = [(float(b), int(b) // tokens_per_step) for b in s.tokens]
        else:
            pairs = [(float(c), int(c / fpt) // tokens_per_step) for c in s.flops]
        for budget, steps in pairs:
            spent = steps * tokens_per_step * fpt
            if s.design == "isoflop" and abs(spent - budget) > ISOFLOP_TOLERANCE * budget:
                if shape is shapes[0]:
                    raise ConfigError(
                        f"sweep.flops: budget {budget:.3g} FLOPs is too small for the smallest model "
                        f"(width {shape.width} needs about {fpt * tokens_per_step / ISOFLOP_TOLERANCE:.3g} "
                        "FLOPs to land within 10% of the budget in whole batches)"
                    )
                continue  # a larger model cannot spend this budget in whole batches: not part of it
            counts = param_counts(shape)
            spec = {
                "shape": asdict(shape),
                "steps": steps,
                "batch_size": t.batch_size,
                "peak_lr": peak_lr(shape.width, t),
                "warmup_steps": warmup_steps(counts.total, steps, tokens_per_step, t),
                "train": numeric_train,
                "data": data_fingerprint,
                "precision": precision,
            }
            runs.append(
                RunSpec(
                    run_id=fingerprint(spec),
                    shape=shape,
                    params=counts,
                    steps=steps,
                    batch_size=t.batch_size,
                    tokens=steps * tokens_per_step,
                    budget=budget,
                    peak_lr=spec["peak_lr"],
                    warmup_steps=spec["warmup_steps"],
                    flops_per_token=fpt,
                    flops_per_token_6n=flops.flops_per_token(shape, "6n"),
                    precision=precision,
                    train=t,
                )
            )
    return tuple(runs)
