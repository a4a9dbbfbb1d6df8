"""Sweep config -> the tuple of runs to train, each with a stable id. Pure: builds no model.

A run id is a hash of everything that changes a run's numbers (shape, steps, batch, LR schedule,
optimiser, seeds, data fingerprint, precision), so results from different settings can never be
mistaken for each other, and an unchanged run is recognised as already done.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from harness import flops
from harness.config import Config, ConfigError, SweepConfig, TrainConfig
from harness.data import SOURCES
from harness.hashing import stable_hash
from harness.models import ModelShape, ParamCounts, family, param_counts, shape_for_width
from harness.schedule import cooldown_start, peak_lr, warmup_steps
from harness.validate import validate

# An IsoFLOP run must spend its budget to within this share in whole batches, else it is left out.
ISOFLOP_TOLERANCE = 0.1
Budget = tuple[float, int, int]  # a run of a size: (its design budget, batch size, steps)
# TrainConfig fields that change how a run is executed or observed, not its numbers.
NON_NUMERIC_TRAIN_FIELDS = ("device", "compile", "threads", "evals", "checkpoint_every", "precision")


@dataclass(frozen=True)
class RunSpec:
    """One planned training run, fully resolved.

    With sweep.branches a run is either a size's main run (warmup, then the peak LR to its last fork
    step, saving its state at every fork step) or a branch: it starts from its main run's state at
    `fork_step` and cools down to `steps`, so its loss is that of a WSD run of `steps` steps
    (Hägele et al. 2024). Branches are the result rows; main runs are not.
    """

    run_id: str
    shape: ModelShape
    params: ParamCounts
    steps: int
    batch_size: int  # sequences per step
    tokens: int  # training tokens = steps * batch_size * seq_len
    budget: float  # the design's budget this run belongs to: tokens (grid) or FLOPs (isoflop)
    peak_lr: float
    warmup_steps: int
    schedule_steps: int  # length of the LR schedule: steps, or for a main run its longest branch's steps
    flops_per_token: float  # full convention, forward + backward
    flops_per_token_6n: float  # Kaplan: 6 * N_nonembedding
    precision: str  # resolved: fp32 | bf16
    train: TrainConfig
    parent: RunSpec | None = None  # a branch's main run
    fork_step: int = 0  # a branch's first step, trained from its main run's state after that many steps
    forks: tuple[int, ...] = ()  # a main run's fork steps, after which it saves its state for its branches

    @property
    def flops(self) -> float:
        return self.flops_per_token * self.tokens

    @property
    def flops_spent(self) -> float:
        """FLOPs this run trains itself: all, less a branch's first fork_step steps (its main run's)."""
        return self.flops_per_token * (self.steps - self.fork_step) * self.batch_size * self.shape.seq_len

    @property
    def name(self) -> str:
        """What a person reads: width, depth, tokens, -s<seed> for a seed other than 0 (a replicate),
        and -main for a WSD main run."""
        name = f"w{self.shape.width}-d{self.shape.depth}-t{self.tokens}"
        if self.train.seed != 0:
            name += f"-s{self.train.seed}"
        return f"{name}-main" if self.forks else name

    @property
    def dirname(self) -> str:
        """The run directory's name, `<name>-<run_id>` (store.run_dir)."""
        return f"{self.name}-{self.run_id}"

    def planned_row(self) -> dict:
        """The results-table columns known before training (see store.RESULT_COLUMNS)."""
        return {
            "run_id": self.run_id,
            "name": self.name,
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
            "batch_size": self.batch_size,
            "steps": self.steps,
            "seed": self.train.seed,
        }

    def to_dict(self) -> dict:
        """JSON-ready record with the derived numbers (params by convention, FLOPs per token, ...)."""
        d = asdict(self)
        d["parent"] = self.parent.run_id if self.parent else None
        d["flops"] = self.flops
        d["flops_6n"] = self.planned_row()["flops_6n"]
        d["tokens_per_param"] = self.tokens / self.params.total
        d["name"] = self.name
        return d


def check_config(cfg: Config) -> None:
    """Every check of a sweep's config before anything is written: the data source's and the model
    family's names (their registries), the field checks (harness.validate), then the family's own
    constraints; ConfigError with one line naming the field."""
    if cfg.data.source not in SOURCES:
        raise ConfigError(f"data.source: unknown value {cfg.data.source!r}; allowed: {', '.join(SOURCES)}")
    model = family(cfg.model.family)
    validate(cfg)
    model.check(cfg.model, cfg.sweep.widths, cfg.train.compile)


def plan_runs(cfg: Config, *, vocab_size: int, data_fingerprint: str, precision: str) -> tuple[RunSpec, ...]:
    """Every result run of the sweep: grid (width x tokens), isoflop (FLOPs budget x width) or paired,
    then, for each of sweep.seeds, the runs `replicated` chooses again with that train.seed.

    With sweep.branches each run is a cooldown branch whose `parent` is its size's main run.
    """
    s = cfg.sweep
    shapes = [shape_for_width(w, cfg.model, vocab_size, cfg.data.seq_len) for w in sorted(s.widths)]
    plans = _with_batches({shape: _budgets(shape, shapes[0], cfg) for shape in shapes}, cfg)
    runs = _plan_seed(plans, cfg.train, data_fingerprint, precision, s.branches)
    chosen = replicated(runs, s)
    for seed in s.seeds:
        t = replace(cfg.train, seed=seed)
        runs += _plan_seed(plans, t, data_fingerprint, precision, s.branches, only=chosen)
    return runs


def batch_for(tokens: int, t: TrainConfig, seq_len: int) -> int:
    """The largest batch, at most train.batch_size, with which a run of `tokens` training tokens trains
    at least train.min_steps optimizer steps (at least 1 sequence; train.batch_size without a
    min_steps). Small budgets then still take enough steps to measure what a model can learn rather
    than how far the optimizer got."""
    if not t.min_steps:
        return t.batch_size
    return max(1, min(t.batch_size, tokens // (t.min_steps * seq_len)))


def smooth_batch(budget: float, top: float, t: TrainConfig) -> int:
    """train.batch_size at the sweep's largest budget `top`, times (budget / top)^batch_exponent below
    it, rounded (at least 1): a batch that is a power of the budget, so that no step of it puts a kink
    into the compute frontier (smaller batches learn more per token at this scale)."""
    return max(1, round(t.batch_size * (budget / top) ** t.batch_exponent))


def _budgets(shape: ModelShape, smallest: ModelShape, cfg: Config) -> list[tuple[float, int]]:
    """(budget, tokens) of every run of this size; an isoflop budget it cannot spend within
    ISOFLOP_TOLERANCE in whole batches, or outside the tokens-per-parameter window, is left out."""
    s, t, seq_len = cfg.sweep, cfg.train, cfg.data.seq_len
    fpt = flops.flops_per_token(shape, "full")
    if s.design == "grid":
        wanted = [(float(b), int(b)) for b in s.tokens]  # (budget, tokens it buys)
    elif s.design == "paired":  # each width trains on its own budget: tokens[i] goes with widths[i]
        b = s.tokens[s.widths.index(shape.width)]
        wanted = [(float(b), int(b))]
    else:
        wanted = [(float(c), int(c / fpt)) for c in s.flops]
    kept = []
    for budget, tokens in wanted:
        batch = batch_for(tokens, t, seq_len)  # the coarsest a run of these tokens gets (see _with_batches)
        spent = tokens // (batch * seq_len) * batch * seq_len * fpt
        if s.design == "isoflop" and abs(spent - budget) > ISOFLOP_TOLERANCE * budget:
            if shape == smallest:
                raise ConfigError(
                    f"sweep.flops: budget {budget:.3g} FLOPs is too small for the smallest model "
                    f"(width {shape.width} needs about {fpt * batch * seq_len / ISOFLOP_TOLERANCE:.3g} "
                    "FLOPs to land within 10% of the budget in whole batches)"
                )
            continue  # a larger model cannot spend this budget in whole batches: not part of it
        if s.design == "isoflop" and not _in_window(spent / fpt / param_counts(shape).total, s):
            continue
        kept.append((budget, tokens))
    return kept


def _with_batches(
    plans: dict[ModelShape, list[tuple[float, int]]], cfg: Config
) -> dict[ModelShape, list[Budget]]:
    """Each run's (budget, batch, steps). The runs of one budget share its batch, `batch_for` its
    fewest tokens (with train.batch_exponent > 0, at most `smooth_batch`), so a budget's sizes differ
    in size alone (a batch that shrank for its largest sizes only would tilt its IsoFLOP profile:
    smaller batches learn more per token at this scale); with sweep.branches the runs of one size share
    the smallest of its budgets' batches (one main run)."""
    seq_len = cfg.data.seq_len
    fewest: dict[float, int] = {}
    for kept in plans.values():
        for budget, tokens in kept:
            fewest[budget] = min(tokens, fewest.get(budget, tokens))
    batch = {budget: batch_for(tokens, cfg.train, seq_len) for budget, tokens in fewest.items()}
    if cfg.train.batch_exponent > 0 and batch:
        top = max(batch)
        batch = {b: min(n, smooth_batch(b, top, cfg.train)) for b, n in batch.items()}
    out = {}
    for shape, kept in plans.items():
        own = min((batch[b] for b, _ in kept), default=cfg.train.batch_size)
        out[shape] = [
            (b, n, tokens // (n * seq_len))
            for b, tokens in kept
            for n in [own if cfg.sweep.branches else batch[b]]
        ]
    return out


def _plan_seed(
    plans: dict[ModelShape, list[Budget]],
    t: TrainConfig,
    data_fingerprint: str,
    precision: str,
    branches: bool,
    only: set[tuple[int, float]] | None = None,
) -> tuple[RunSpec, ...]:
    """The runs of one training seed (t.seed): every (size, budget) of `plans`, or those in `only`
    ((width, budget) pairs). A size's warmup and branch structure come from all its budgets, so a
    replicate differs from its original in the seed alone."""
    ident = {
        "train": {k: v for k, v in asdict(t).items() if k not in NON_NUMERIC_TRAIN_FIELDS},
        "data": data_fingerprint,
    }
    runs = []
    for shape, kept in plans.items():
        wanted = [p for p in kept if only is None or (shape.width, p[0]) in only]
        if not wanted:
            continue
        template = RunSpec(
            run_id="",
            shape=shape,
            params=param_counts(shape),
            steps=0,
            batch_size=kept[0][1],
            tokens=0,
            budget=0.0,
            peak_lr=peak_lr(shape.width, t),
            warmup_steps=0,
            schedule_steps=0,
            flops_per_token=flops.flops_per_token(shape, "full"),
            flops_per_token_6n=flops.flops_per_token(shape, "6n"),
            precision=precision,
            train=t,
        )
        if branches:
            runs += _branches(template, ident, kept, wanted)
            continue
        for budget, batch, steps in wanted:
            run = replace(template, batch_size=batch)
            warmup = warmup_steps(run.params.total, steps, batch * shape.seq_len, t)
            runs.append(_resolve(run, ident, budget=budget, steps=steps, warmup=warmup))
    return tuple(runs)


def replicated(runs: Iterable[RunSpec], s: SweepConfig) -> set[tuple[int, float]]:
    """The (width, budget) pairs that sweep.seeds trains again.

    all: every run. near_optimum: at each budget of replicate_budgets (empty: every budget), the
    replicate_sizes sizes whose tokens per parameter are nearest, in log, to replicate_tokens_per_param,
    a prior guess of the compute-optimal ratio fixed before any run: the sizes that decide each
    budget's optimum, where seed noise matters most.
    """
    runs = list(runs)
    if s.replicate == "all":
        return {(r.shape.width, r.budget) for r in runs}
    budgets = sorted({r.budget for r in runs})
    if s.replicate_budgets:
        budgets = [b for b in budgets if any(math.isclose(b, x) for x in s.replicate_budgets)]

    def distance(r: RunSpec) -> tuple[float, int]:  # ties go to the smaller size
        return abs(math.log(r.tokens / r.params.total / s.replicate_tokens_per_param)), r.shape.width

    chosen = set()
    for b in budgets:
        at = sorted((r for r in runs if r.budget == b), key=distance)
        chosen |= {(r.shape.width, b) for r in at[: s.replicate_sizes]}
    return chosen


def _resolve(
    template: RunSpec, ident: dict, *, budget: float, steps: int, warmup: int, **branching: object
) -> RunSpec:
    """The size's template with a budget, length, warmup and branch fields, and the run id hashing them."""
    tokens_per_step = template.batch_size * template.shape.seq_len
    hashed = {
        **ident,
        "shape": asdict(template.shape),
        "steps": steps,
        "batch_size": template.batch_size,
        "peak_lr": template.peak_lr,
        "warmup_steps": warmup,
        "precision": template.precision,
        **{k: v.run_id if isinstance(v, RunSpec) else v for k, v in branching.items()},
    }
    return replace(
        template,
        run_id=stable_hash(hashed, 12),
        steps=steps,
        tokens=steps * tokens_per_step,
        budget=budget,
        warmup_steps=warmup,
        **{"schedule_steps": steps, **branching},
    )


def _branches(template: RunSpec, ident: dict, budgets: list[Budget], wanted: list[Budget]) -> list[RunSpec]:
    """One size's WSD cooldown branches, one per (budget, batch, steps) of `wanted` (one batch: the
    template's), all forked from one main run.

    The main run warms up once, as long as the shortest of all the size's `budgets`' warmups (so every
    branch keeps its warmup share, and a replicate of some of them warms up as the original did), then
    holds the peak LR up to the latest wanted fork. It is the stable phase of the longest wanted
    budget's WSD run; a branch of S steps forks at cooldown_start(S) and decays to S.
    """
    t = template.train
    tokens_per_step = template.batch_size * template.shape.seq_len
    shortest, (longest_budget, _, longest) = min(n for *_, n in budgets), max(wanted, key=lambda p: p[2])
    warmup = warmup_steps(template.params.total, shortest, tokens_per_step, t)
    fork_of = {n: cooldown_start(n, t) for *_, n in wanted}
    if cooldown_start(shortest, t) < warmup:
        raise ConfigError(
            f"train.cooldown_frac: a {t.cooldown_frac} cooldown of the {shortest}-step budget starts at "
            f"step {cooldown_start(shortest, t)}, inside the {warmup}-step warmup; lower it"
        )
    main = _resolve(
        template,
        ident,
        budget=longest_budget,
        steps=fork_of[longest],
        warmup=warmup,
        schedule_steps=longest,
        forks=tuple(sorted(set(fork_of.values()))),
    )
    return [
        _resolve(template, ident, budget=b, steps=n, warmup=warmup, parent=main, fork_step=fork_of[n])
        for b, _, n in wanted
    ]


def training_order(specs: Iterable[RunSpec]) -> list[RunSpec]:
    """The runs to train, in order: each branch's main run just before the first of its branches."""
    order: list[RunSpec] = []
    mains: set[str] = set()
    for spec in specs:
        if spec.parent is not None and spec.parent.run_id not in mains:
            mains.add(spec.parent.run_id)
            order.append(spec.parent)
        order.append(spec)
    return order


def run_groups(specs: Iterable[RunSpec]) -> list[list[RunSpec]]:
    """The runs in groups that one process trains: a single run, or all the branches of one main run
    (they start from its state), in the order of their first run."""
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.parent.run_id if spec.parent else spec.run_id, []).append(spec)
    return list(groups.values())


def shard(specs: Iterable[RunSpec], index: int, count: int) -> list[RunSpec]:
    """Shard `index` of `count` (a cluster's job): every count-th group of `run_groups`."""
    return [spec for i, group in enumerate(run_groups(specs)) if i % count == index for spec in group]


def compute_summary(specs: Iterable[RunSpec]) -> dict[str, float]:
    """FLOPs (full count) of the results as separate runs, FLOPs the sweep actually trains (branches:
    main runs + cooldowns), and the share saved."""
    specs = list(specs)
    separate = sum(s.flops for s in specs)
    spent = sum(s.flops_spent for s in training_order(specs))
    return {"flops_separate": separate, "flops_spent": spent, "saved_frac": 1 - spent / separate}


def _in_window(tokens_per_param: float, s: SweepConfig) -> bool:
    """Whether an IsoFLOP run's tokens per parameter lie inside the sweep's window (0: no bound)."""
    lo, hi = s.min_tokens_per_param, s.max_tokens_per_param
    return tokens_per_param >= lo and (hi == 0 or tokens_per_param <= hi)
