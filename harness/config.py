"""Structured-config schemas for every Hydra group.

The dataclasses are registered in Hydra's ConfigStore as the schema of each group, so a misspelled
key or a value of the wrong type fails when the config is composed. `harness.validate` then checks
what a type cannot express and raises `ConfigError` with one line naming the field and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

TOKENIZERS = ("bpe", "bytes", "pretrained")
DESIGNS = ("grid", "isoflop", "paired")
REPLICATE_RULES = ("all", "near_optimum")
SCHEDULES = ("cosine", "wsd")
LR_RULES = ("constant", "inverse_width", "power")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
LOGGER_BACKENDS = ("wandb", "off")
WANDB_MODES = ("auto", "online", "offline")
FLOP_CONVENTIONS = ("full", "6n")
PARAM_CONVENTIONS = ("total", "nonembedding")
HOLDOUT_LAWS = ("offset", "pure")


class ConfigError(ValueError):
    """A config value that cannot be used; the message is one line naming the field."""


@dataclass
class ModelConfig:
    """Architecture family and the depth/head rule that turns the sweep's width dial into a shape."""

    family: str = "llama"  # llama | gpt2 | neox (HF transformers causal LMs, random init) | lstm
    aspect: int = 32  # width per layer: depth = max(1, round(width / aspect)), unless depth is set
    depth: int = 0  # every width gets this many layers (0: from aspect), so sizes grow without a jump
    head_dim: int = 16  # heads = width / head_dim; width must be a multiple of it
    n_heads: int = 0  # every width gets this many heads (0: width / head_dim); width must be a multiple
    ffn_mult: float = 4.0  # MLP hidden = ffn_mult * width (llama: 2/3 of it, rounded to 8, gated)
    tie_embeddings: bool = False  # tied input/output embedding (counted once)


@dataclass
class SyntheticConfig:
    """A Zipf mixture of sparse Markov-chain 'skills'; its Bayes-optimal loss is computed exactly."""

    n_skills: int = 512  # number of distinct chains; skill k has frequency ~ k^-zipf_exponent
    zipf_exponent: float = 1.2
    branching: int = 2  # successors per token in each skill's chain
    concentration: float = 1.0  # Dirichlet concentration of each token's successor probabilities
    # A copy skill (off at 0): this share of sequences is a random block of copy_period tokens
    # repeated; predicting it is one rule (attend copy_period - 1 tokens back) rather than a table
    copy_frac: float = 0.0
    copy_period: int = 16


@dataclass
class DataConfig:
    """Where tokens come from and how they are cut into training windows."""

    source: str = "synthetic"  # synthetic | stdlib | hf | text
    seq_len: int = 64  # context length in tokens
    vocab_size: int = 256  # synthetic alphabet, or BPE vocabulary to train
    val_tokens: int = 32768  # size of the fixed held-out evaluation set, in tokens
    seed: int = 1234  # generation / split seed of the data (not of the model)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    # Real text (stdlib | hf | text):
    tokenizer: str = "bpe"  # bpe (trained on the train split) | bytes | pretrained
    tokenizer_name: str = ""  # hub name, with tokenizer=pretrained
    files: list[str] = field(default_factory=list)  # data=text: paths or globs of .txt/.jsonl files
    text_field: str = "text"  # JSONL / HF column holding the text
    hf_path: str = ""  # data=hf: load_dataset(path, name, split=...)
    hf_name: str = ""
    hf_split: str = "train"
    hf_streaming: bool = False
    max_chars: int = 0  # cap on characters read from the source (0: all)
    val_fraction: float = 0.05  # share of documents (files) held out for validation
    include_tests: bool = False  # data=stdlib: also read the stdlib's test suites
    noise_fraction: float = 0.0  # share of training tokens replaced by uniform noise
    max_unique_tokens: int = 0  # cap on distinct training tokens (0: no cap); larger budgets repeat
    cache_dir: str = "${oc.env:HARNESS_CACHE,.cache/harness}"  # token caches, tokenizers
    tokenizer_train_chars: int = 0  # bpe: train on at most this many characters of the train split (0: all)


@dataclass
class TrainConfig:
    """Optimiser, schedule, evaluation and device settings shared by every run of a sweep."""

    lr: float = 3e-3  # peak learning rate at lr_ref_width
    lr_rule: str = "inverse_width"  # constant | inverse_width (peak lr * lr_ref_width / width, capped)
    # | power (lr * (lr_ref_width / width)^lr_exponent above lr_ref_width, lr below)
    lr_ref_width: int = 64
    lr_exponent: float = 1.0  # power: how fast the peak LR falls with width
    lr_compute_exponent: float = 0.0  # >0: peak LR also times (lr_ref_flops / C)^this, C the run's FLOPs
    lr_ref_flops: float = 1e11  # the compute at which that factor is 1
    batch_size: int = 16  # sequences per optimiser step (the most: see min_steps, batch_exponent)
    min_steps: int = 0  # >0: a budget's runs share the largest batch (<= batch_size) that gives its
    # fewest-token run at least this many steps; WSD branches of a size share its smallest (harness.plan)
    batch_exponent: float = 0.0  # >0: a budget's batch is at most batch_size x (budget / largest
    # budget)^batch_exponent, rounded: a smooth power of the budget (harness.plan.smooth_batch)
    schedule: str = "cosine"  # cosine | wsd (warmup, stable, linear cooldown)
    final_lr_frac: float = 0.1  # lr at the end of decay, as a fraction of peak
    cooldown_frac: float = 0.2  # wsd: share of the run spent cooling down
    warmup_tokens_per_param: float = 1.0  # warmup length in tokens = this * params_total ...
    warmup_max_frac: float = 0.1  # ... but at most this share of the run
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global grad norm (0: off)
    optimizer: str = "adamw"  # adamw | sgd (sgd: momentum=beta1)
    evals: int = 8  # evaluations per run, evenly spaced in tokens; the last is at the end
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on cuda, fp32 on cpu) | fp32 | bf16
    compile: bool = False  # torch.compile the model (inductor: triton on cuda, a C++ compiler on cpu)
    threads: int = 0  # torch threads per training process (0: 1 on cpu, or its share; harness.launch)
    diverge_loss: float = 0.0  # train loss above which a run is 'diverged' (0: 2 * ln(vocab))
    checkpoint_every: int = 0  # steps between resumable checkpoints (0: none)
    seed: int = 0  # model init and batch order seed


@dataclass
class SweepConfig:
    """The set of runs: a size dial crossed with token budgets (grid) or compute budgets (isoflop)."""

    name: str = "cpu"
    dir: str = "runs/${sweep.name}"  # results land here; relative to the working directory
    design: str = "grid"  # grid | isoflop | paired (widths[i] trains on tokens[i])
    widths: list[int] = field(default_factory=lambda: [32, 48, 64, 96, 128])  # the size dial
    tokens: list[int] = field(default_factory=lambda: [131072, 262144, 524288])  # grid budgets
    flops: list[float] = field(default_factory=list)  # isoflop budgets, FLOPs (full convention)
    # isoflop: leave a size out of a budget where its tokens per parameter (total) fall outside
    # [min, max] (0: no bound), so each budget trains only sizes near its optimum
    min_tokens_per_param: float = 0.0
    max_tokens_per_param: float = 0.0
    branches: bool = False  # one constant-LR main run per size; each budget is a WSD cooldown branch of it
    # Replicate seeds: the runs `replicate` chooses are trained again with train.seed = each of these
    # (run names get -s<seed>), so the sweep measures run-to-run noise.
    seeds: list[int] = field(default_factory=list)
    replicate: str = "near_optimum"  # all | near_optimum (see harness.plan.replicated)
    # near_optimum: at each of replicate_budgets (empty: every budget), the replicate_sizes sizes whose
    # tokens per parameter (total) are nearest, in log, to replicate_tokens_per_param (a prior optimum)
    replicate_budgets: list[float] = field(default_factory=list)
    replicate_sizes: int = 2
    replicate_tokens_per_param: float = 20.0
    shard: int = 0  # this job trains runs with index % num_shards == shard (set by a multirun, -m)
    num_shards: int = 1  # jobs a multirun splits the runs into (configs/config.yaml: hydra.sweeper)
    # runs trained at once, each in its own process (harness.execute): cpu, 0 = usable cores / jobs at
    # once / train.threads; cuda, runs per GPU, 0 = as many as their memory and size allow
    workers: int = 0
    stage: str = "all"  # all | train | fit
    progress: bool = True  # a progress bar per run (plain lines when the output is not a terminal)
    dry_run: bool = False  # print the plan, paths and estimated time, then exit without training
    max_hours: float = 168.0  # refuse a plan estimated to take longer than this on this device
    # refuse a plan whose runs would pass over a finite source's training tokens more than this many
    # times (0: no bound; the report still flags runs beyond 4, Muennighoff et al. 2023)
    max_epochs: float = 0.0


@dataclass
class LoggerConfig:
    """Weights & Biases settings; `backend: off` logs nothing."""

    backend: str = "wandb"  # wandb | off
    project: str = "scaling-harness"
    entity: str = ""
    mode: str = "auto"  # auto (online when WANDB_API_KEY is set, else offline) | online | offline
    dir: str = ""  # W&B files (runs, cache, artifacts); empty: <sweep.dir>/wandb
    tags: list[str] = field(default_factory=list)


@dataclass
class FitConfig:
    """Conventions, bootstrap, hold-out, calibration and verdict thresholds of the scaling-law fit
    (what each rule means and why these values: docs/fit.md, configs/fit/default.yaml)."""

    flops: str = "full"  # full | 6n: which compute count C the laws use
    params: str = "total"  # total | nonembedding: which N the laws use
    bootstrap: int = 1000  # resamples (each run's loss redrawn from its measured noise); 0: no intervals
    ci: float = 0.95
    seed: int = 0
    isoflop_window: float = (
        2.0  # a budget's parabola goes through the sizes within this factor of its best run
    )
    holdout_frac: float = 0.2  # held out: the top compute budgets (>= 2) holding at least this share of runs
    holdout_law: str = "offset"  # offset | pure: the law whose hold-out prediction the verdict tests
    min_noise: float = 0.002  # floor on a run's relative noise (std of log L)
    max_misfit: float = 1.5  # verdict: RMS frontier residual, in noise standard deviations
    max_rise_z: float = 3.0  # verdict: a budget's best loss above a cheaper budget's, in standard deviations
    max_holdout_z: float = 2.5  # verdict: hold-out miss, in standard deviations of the prediction
    max_holdout_error: float = 0.10  # verdict: hold-out miss, relative
    calibration_draws: int = 200  # simulated sweeps per truth for the verdict's error rates; 0: none

    @classmethod
    def from_mapping(cls, values: dict) -> FitConfig:
        """A FitConfig from a stored config (sweep.json), ignoring keys of older versions."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass
class CompareConfig:
    """Decision rules of an ingredient comparison (harness.compare), fixed before its runs: the smallest
    effects worth reporting and the tests' levels (the experiment's multirun records them first)."""

    min_offset: float = 0.01  # ln-loss ratio at the middle of the shared compute (~1% in loss)
    min_slope: float = 0.01  # d ln(L ratio) / d ln C: 0.01 in the frontier's exponent
    min_top: float = 0.02  # ln-loss ratio at the largest shared budget
    level: float = 0.05  # effects: each of offset, slope, top tested at level / 3; equivalence: TOST at level
    lof_level: float = 0.01  # the line's lack of fit, below which the difference is not a line in ln C
    ci: float = 0.95  # level of the intervals shown


@dataclass
class AbilitiesConfig:
    """Rules that call an ability abrupt (harness.report.abilities), fixed before the runs: the
    exact match's 10-90% rise along the compute frontier is narrower than max_width decades (upper end
    of its interval) and narrower than the log-prob's own prediction (bootstrap, Bonferroni over every
    ability and answer length tested), with its midpoint inside the compute range."""

    max_width: float = 0.5  # decades of compute
    level: float = 0.05  # family-wise error of 'sharper than the log-prob predicts'
    bootstrap: int = 200  # resamples of prompts and seeds for the widths' intervals
    ci: float = 0.95
    seed: int = 0


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    abilities: AbilitiesConfig = field(default_factory=AbilitiesConfig)


def register_configs() -> None:
    """Register the root schema; configs/config.yaml builds on it, so every group is typed."""
    from hydra.core.config_store import ConfigStore  # here, so the fit and report import no hydra

    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
