"""Structured-config schemas for every Hydra group; their defaults are the default run's.

The dataclasses are registered in Hydra's ConfigStore as the schema of each group, so a misspelled
key or a value of the wrong type fails when the config is composed. `harness.validate` then checks
what a type cannot express and raises `ConfigError` with one line naming the field and what is allowed.

The defaults below are `make sweep`'s on a machine without a GPU (configs/sweep/cpu.yaml: the preset
that overrides nothing; how each number was chosen: docs/default_sweep.md). Every other preset states
what it changes and why (tests/test_config.py checks that it changes something, with a comment).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

TOKENIZERS = ("bpe", "bytes", "pretrained")
DESIGNS = ("grid", "isoflop", "paired")
REPLICATE_RULES = ("all", "near_optimum")
SCHEDULES = ("cosine", "wsd")
LR_RULES = ("constant", "inverse_width", "power")
OBJECTIVES = ("next_token", "last_token")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
LOGGER_BACKENDS = ("wandb", "off")
WANDB_MODES = ("auto", "online", "offline")
FLOP_CONVENTIONS = ("full", "6n")
PARAM_CONVENTIONS = ("total", "nonembedding")


class ConfigError(ValueError):
    """A config value that cannot be used; the message is one line naming the field."""


@dataclass
class ModelConfig:
    """Architecture family and the depth/head rule that turns the sweep's width dial into a shape."""

    family: str = "llama"  # llama | gpt2 | neox (HF transformers causal LMs, random init) | lstm
    aspect: int = 32  # width per layer: depth = max(1, round(width / aspect)), unless depth is set
    depth: int = 2  # every width gets this many layers (0: from aspect), so sizes grow without a jump
    head_dim: int = 16  # heads = width / head_dim; width must be a multiple of it
    n_heads: int = 1  # every width gets this many heads (0: width / head_dim); width must be a multiple
    ffn_mult: float = 4.0  # MLP hidden = ffn_mult * width (llama: 2/3 of it, rounded to 8, gated)
    tie_embeddings: bool = False  # tied input/output embedding (counted once)


@dataclass
class SyntheticConfig:
    """A Zipf mixture of sparse Markov-chain 'skills'; its Bayes-optimal loss is computed exactly."""

    n_skills: int = 64  # number of distinct chains; skill k has frequency ~ k^-zipf_exponent
    zipf_exponent: float = 2.4
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
    vocab_size: int = 32  # synthetic alphabet, or BPE vocabulary to train
    val_tokens: int = 131072  # size of the fixed held-out evaluation set, in tokens
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

    lr: float = 0.0116  # peak learning rate at lr_ref_width (fitted to sweep=lr_scan)
    lr_rule: str = "power"  # constant | inverse_width (peak lr * lr_ref_width / width, capped)
    # | power (lr * (lr_ref_width / width)^lr_exponent above lr_ref_width, lr below)
    lr_ref_width: int = 24
    lr_exponent: float = 0.748  # power: how fast the peak LR falls with width
    batch_size: int = 60  # sequences per optimiser step (the most: see min_steps, batch_exponent)
    min_steps: int = 200  # >0: a budget's runs share the largest batch (<= batch_size) that gives its
    # fewest-token run at least this many steps; WSD branches of a size share its smallest (harness.plan)
    batch_exponent: float = 0.5  # >0: a budget's batch is at most batch_size x (budget / largest
    # budget)^batch_exponent, rounded: a smooth power of the budget (harness.plan.smooth_batch)
    schedule: str = "cosine"  # cosine | wsd (warmup, stable, linear cooldown)
    final_lr_frac: float = 0.1  # lr at the end of decay, as a fraction of peak
    cooldown_frac: float = 0.2  # wsd: share of the run spent cooling down
    warmup_tokens_per_param: float = 1.0  # warmup length in tokens = this * params_total ...
    warmup_max_frac: float = 0.1  # ... but at most this share of the run
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # max global grad norm (0: off)
    optimizer: str = "adamw"  # adamw | sgd (sgd: momentum=beta1)
    # next_token: every position of a window is a target (dense next-token prediction); last_token: only
    # each window's last position (1 / seq_len of the signal for the same compute: the scalable-objective
    # experiment's weak arm). Validation is next-token loss at every position either way.
    objective: str = "next_token"
    evals: int = 1  # evaluations per run, evenly spaced in tokens; the last is at the end
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on cuda, fp32 on cpu) | fp32 | bf16
    compile: bool = False  # torch.compile the model (inductor: triton on cuda, a C++ compiler on cpu)
    threads: int = 0  # torch threads per training process (0: one on cpu, the GPU's share of the
    # cores on cuda; harness.device.cpu_layout)
    checkpoint_every: int = 0  # steps between resumable checkpoints (0: none)
    seed: int = 0  # model init and batch order seed


@dataclass
class SweepConfig:
    """The set of runs: a size dial crossed with token budgets (grid) or compute budgets (isoflop)."""

    name: str = "cpu"
    dir: str = "runs/${sweep.name}"  # results land here; relative to the working directory
    design: str = "isoflop"  # grid | isoflop | paired (widths[i] trains on tokens[i])
    widths: list[int] = field(  # the size dial
        default_factory=lambda: [10, 12, 14, 16, 20, 24, 28, 32, 38, 44, 52, 60, 70, 80]
    )
    tokens: list[int] = field(default_factory=list)  # grid (and paired) budgets, training tokens
    flops: list[float] = field(  # isoflop budgets, FLOPs (full convention): a quarter decade apart
        default_factory=lambda: [1e10, 1.78e10, 3.16e10, 5.62e10, 1e11, 1.78e11, 3.16e11, 5.62e11, 1e12]
    )
    # isoflop: leave a size out of a budget where its tokens per parameter (total) fall outside
    # [min, max] (0: no bound), so each budget trains only sizes near its optimum
    min_tokens_per_param: float = 5.0
    max_tokens_per_param: float = 500.0
    branches: bool = False  # one constant-LR main run per size; each budget is a WSD cooldown branch of it
    # Replicate seeds: the runs `replicate` chooses are trained again with train.seed = each of these
    # (run names get -s<seed>), so the sweep measures run-to-run noise.
    seeds: list[int] = field(default_factory=lambda: [1, 2])
    replicate: str = "near_optimum"  # all | near_optimum (see harness.plan.replicated)
    # near_optimum: at each of replicate_budgets (empty: every budget), the replicate_sizes sizes whose
    # tokens per parameter (total) are nearest, in log, to replicate_tokens_per_param (a prior optimum)
    replicate_budgets: list[float] = field(default_factory=lambda: [3.16e10, 3.16e11])
    replicate_sizes: int = 2
    replicate_tokens_per_param: float = 30.0
    # runs trained at once on this machine, each in its own process (harness.execute, the one local
    # scheduler): cpu, 0 = usable cores / train.threads; cuda, runs per GPU, 0 = as many as fit
    workers: int = 0
    # a cluster's jobs (-m hydra/launcher=slurm): the runs split into num_shards jobs, this one's index
    shard: int = 0
    num_shards: int = 1
    stage: str = "all"  # all | train | fit
    progress: bool = True  # a progress bar per run (plain lines when the output is not a terminal)
    dry_run: bool = False  # print the plan, paths and estimated time, then exit without training
    sized_for: str = "cpu"  # cpu | gpu: the machine the sizes and budgets are for (the start screen says
    # when a gpu preset is about to train on a cpu: no CUDA, never a silent fallback)
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
    """The scaling-law fit's conventions and the size of its simulations; its rules are fixed in the code
    (harness.fit.rules, docs/fit.md)."""

    flops: str = "full"  # full | 6n: which compute count C the laws use
    params: str = "total"  # total | nonembedding: which N the laws use
    bootstrap: int = 1000  # resamples (each run's loss redrawn from its measured noise); 0: no intervals
    ci: float = 0.95
    seed: int = 0
    calibration_draws: int = 200  # simulated sweeps per truth for the verdict's error rates; 0: none

    @classmethod
    def from_mapping(cls, values: dict) -> FitConfig:
        """A FitConfig from a stored config (sweep.json), ignoring keys of older versions."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    fit: FitConfig = field(default_factory=FitConfig)


def register_configs() -> None:
    """Register the root schema; configs/config.yaml builds on it, so every group is typed."""
    from hydra.core.config_store import ConfigStore  # here, so the fit and report import no hydra

    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
