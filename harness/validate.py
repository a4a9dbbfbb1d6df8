"""The one-line validation of a composed config's values: what a type cannot express (positive
budgets, known choices, fractions, seeds that replicate planned runs). Each check raises `ConfigError`
with one line naming the field and what is allowed, before anything is trained."""

from __future__ import annotations

import math

from harness.config import (
    DESIGNS,
    DEVICES,
    FLOP_CONVENTIONS,
    LOGGER_BACKENDS,
    LR_RULES,
    OBJECTIVES,
    PARAM_CONVENTIONS,
    PRECISIONS,
    REPLICATE_RULES,
    SCHEDULES,
    TOKENIZERS,
    WANDB_MODES,
    Config,
    ConfigError,
    DataConfig,
    FitConfig,
    LoggerConfig,
    ModelConfig,
    SweepConfig,
    TrainConfig,
)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}: unknown value {value!r}; allowed: {', '.join(allowed)}")


def _positive(name: str, value: float, *, zero_ok: bool = False) -> None:
    ok = value >= 0 if zero_ok else value > 0
    if not (ok and math.isfinite(value)):
        bound = ">= 0" if zero_ok else "> 0"
        raise ConfigError(f"{name}: must be {bound}, got {value!r}")


def _fraction(name: str, value: float, *, closed: bool = False) -> None:
    ok = 0 <= value <= 1 if closed else 0 <= value < 1
    if not ok:
        raise ConfigError(f"{name}: must be in [0, 1{']' if closed else ')'}, got {value!r}")


def _seed(name: str, value: int) -> None:
    # numpy's generators (data, batches, bootstrap) take seeds >= 0 only
    if value < 0:
        raise ConfigError(f"{name}: a seed must be >= 0, got {value}")


def validate(cfg: Config) -> None:
    """Check every value a type cannot; raise ConfigError with one line naming the field."""
    _check_model(cfg.model)
    _check_data(cfg.data)
    _check_train(cfg.train)
    _check_sweep(cfg.sweep, cfg.train, cfg.data)
    _check_logger(cfg.logger)
    _check_fit(cfg.fit)


def _check_model(m: ModelConfig) -> None:
    _positive("model.aspect", m.aspect)
    _positive("model.depth", m.depth, zero_ok=True)
    _positive("model.head_dim", m.head_dim)
    _positive("model.n_heads", m.n_heads, zero_ok=True)
    _positive("model.ffn_mult", m.ffn_mult)


def _check_data(d: DataConfig) -> None:
    _seed("data.seed", d.seed)
    _choice("data.tokenizer", d.tokenizer, TOKENIZERS)
    _positive("data.seq_len", d.seq_len)
    if d.vocab_size < 2:
        raise ConfigError(f"data.vocab_size: must be >= 2, got {d.vocab_size}")
    _positive("data.val_tokens", d.val_tokens)
    _positive("data.synthetic.n_skills", d.synthetic.n_skills)
    _positive("data.synthetic.zipf_exponent", d.synthetic.zipf_exponent, zero_ok=True)
    _positive("data.synthetic.concentration", d.synthetic.concentration)
    if not 1 <= d.synthetic.branching <= d.vocab_size:
        raise ConfigError(
            f"data.synthetic.branching: must be in [1, data.vocab_size={d.vocab_size}], "
            f"got {d.synthetic.branching}"
        )
    _fraction("data.synthetic.copy_frac", d.synthetic.copy_frac)
    if d.synthetic.copy_frac and not 2 <= d.synthetic.copy_period < d.seq_len // 2:
        raise ConfigError(
            f"data.synthetic.copy_period: must be in [2, data.seq_len / 2 = {d.seq_len // 2}) so that a "
            f"sequence repeats its block, got {d.synthetic.copy_period}"
        )
    _fraction("data.val_fraction", d.val_fraction)
    _fraction("data.noise_fraction", d.noise_fraction)
    _positive("data.max_unique_tokens", d.max_unique_tokens, zero_ok=True)
    _positive("data.max_chars", d.max_chars, zero_ok=True)
    if d.source == "text" and not d.files:
        raise ConfigError("data.files: data.source=text needs at least one path or glob")
    if d.source == "hf" and not d.hf_path:
        raise ConfigError("data.hf_path: data.source=hf needs a dataset path (e.g. roneneldan/TinyStories)")
    if d.tokenizer == "pretrained" and not d.tokenizer_name:
        raise ConfigError("data.tokenizer_name: data.tokenizer=pretrained needs a tokenizer name")
    _positive("data.tokenizer_train_chars", d.tokenizer_train_chars, zero_ok=True)
    if d.max_unique_tokens and d.max_unique_tokens <= d.seq_len:
        raise ConfigError(
            f"data.max_unique_tokens: must be 0 (no cap) or more than data.seq_len={d.seq_len}, "
            f"got {d.max_unique_tokens}"
        )
    if d.source != "synthetic" and d.tokenizer == "bpe" and d.vocab_size < 257:
        raise ConfigError(
            f"data.vocab_size: data.tokenizer=bpe needs >= 257 (256 bytes + end-of-text), got {d.vocab_size}"
        )
    if d.source in ("text", "hf") and not d.text_field:
        raise ConfigError("data.text_field: empty; name the JSONL/dataset field holding the text")


def _check_train(t: TrainConfig) -> None:
    _seed("train.seed", t.seed)
    _positive("train.lr", t.lr)
    _choice("train.lr_rule", t.lr_rule, LR_RULES)
    _positive("train.lr_ref_width", t.lr_ref_width)
    _positive("train.lr_exponent", t.lr_exponent, zero_ok=True)
    _positive("train.batch_size", t.batch_size)
    _positive("train.min_steps", t.min_steps, zero_ok=True)
    _positive("train.batch_exponent", t.batch_exponent, zero_ok=True)
    _choice("train.schedule", t.schedule, SCHEDULES)
    _fraction("train.final_lr_frac", t.final_lr_frac, closed=True)
    _fraction("train.cooldown_frac", t.cooldown_frac, closed=True)
    _positive("train.warmup_tokens_per_param", t.warmup_tokens_per_param, zero_ok=True)
    _fraction("train.warmup_max_frac", t.warmup_max_frac)
    _positive("train.weight_decay", t.weight_decay, zero_ok=True)
    _fraction("train.beta1", t.beta1)
    _fraction("train.beta2", t.beta2)
    _positive("train.grad_clip", t.grad_clip, zero_ok=True)
    _choice("train.optimizer", t.optimizer, ("adamw", "sgd"))
    _choice("train.objective", t.objective, OBJECTIVES)
    _positive("train.evals", t.evals)
    _choice("train.device", t.device, DEVICES)
    _choice("train.precision", t.precision, PRECISIONS)
    _positive("train.threads", t.threads, zero_ok=True)
    _positive("train.checkpoint_every", t.checkpoint_every, zero_ok=True)


def _check_sweep(s: SweepConfig, t: TrainConfig, d: DataConfig) -> None:
    if not s.name or s.name in (".", "..") or any(c in s.name for c in "/\\\0"):
        raise ConfigError(
            f"sweep.name: must be one directory name inside the sweeps folder (not '.' or '..', no '/'), "
            f"got {s.name!r}"
        )
    _choice("sweep.design", s.design, DESIGNS)
    _choice("sweep.stage", s.stage, ("all", "train", "fit"))
    _choice("sweep.sized_for", s.sized_for, ("cpu", "gpu"))
    if not s.widths:
        raise ConfigError("sweep.widths: empty sweep; give at least one width")
    if len(set(s.widths)) != len(s.widths):
        raise ConfigError(f"sweep.widths: duplicate sizes in {list(s.widths)}; each width once")
    for i, w in enumerate(s.widths):
        _positive(f"sweep.widths[{i}]", w)
    budgets = s.flops if s.design == "isoflop" else s.tokens
    key = "sweep.flops" if s.design == "isoflop" else "sweep.tokens"
    if s.design == "paired" and len(s.tokens) != len(s.widths):
        raise ConfigError(
            f"sweep.tokens: design=paired needs one budget per width ({len(s.widths)}), got {len(s.tokens)}"
        )
    if not budgets:
        raise ConfigError(f"{key}: empty sweep; design={s.design} needs at least one budget")
    if len(set(budgets)) != len(budgets):
        raise ConfigError(f"{key}: duplicate budgets in {list(budgets)}; each budget once")
    batch_tokens = t.batch_size * d.seq_len
    for i, b in enumerate(budgets):
        _positive(f"{key}[{i}]", b)
        if s.design != "isoflop" and b < batch_tokens:
            raise ConfigError(
                f"{key}[{i}]: budget {b} tokens is smaller than one batch "
                f"(train.batch_size * data.seq_len = {batch_tokens})"
            )
    if s.branches and t.schedule != "wsd":
        raise ConfigError(
            f"sweep.branches: cooldown branches need train.schedule=wsd (warmup, stable, decay), "
            f"got {t.schedule}"
        )
    if s.branches and not 0 < t.cooldown_frac < 1:
        raise ConfigError(
            f"train.cooldown_frac: sweep.branches needs a cooldown in (0, 1), got {t.cooldown_frac}"
        )
    _positive("sweep.min_tokens_per_param", s.min_tokens_per_param, zero_ok=True)
    _positive("sweep.max_tokens_per_param", s.max_tokens_per_param, zero_ok=True)
    if 0 < s.max_tokens_per_param < s.min_tokens_per_param:
        raise ConfigError(
            f"sweep.max_tokens_per_param: {s.max_tokens_per_param} is below "
            f"sweep.min_tokens_per_param={s.min_tokens_per_param}"
        )
    _check_seeds(s, t.seed, budgets, key)
    _positive("sweep.num_shards", s.num_shards)
    _positive("sweep.workers", s.workers, zero_ok=True)
    _positive("sweep.max_hours", s.max_hours)
    _positive("sweep.max_epochs", s.max_epochs, zero_ok=True)
    if not 0 <= s.shard < s.num_shards:
        raise ConfigError(f"sweep.shard: must be in [0, sweep.num_shards={s.num_shards}), got {s.shard}")


def _check_logger(lg: LoggerConfig) -> None:
    _choice("logger.backend", lg.backend, LOGGER_BACKENDS)
    _choice("logger.mode", lg.mode, WANDB_MODES)


def _check_fit(f: FitConfig) -> None:
    _seed("fit.seed", f.seed)
    _choice("fit.flops", f.flops, FLOP_CONVENTIONS)
    _choice("fit.params", f.params, PARAM_CONVENTIONS)
    _positive("fit.bootstrap", f.bootstrap, zero_ok=True)
    if not 0 < f.ci < 1:
        raise ConfigError(f"fit.ci: must be in (0, 1), got {f.ci}")
    _positive("fit.calibration_draws", f.calibration_draws, zero_ok=True)


def _check_seeds(s: SweepConfig, seed: int, budgets: list, key: str) -> None:
    """Replicate seeds distinct and other than train.seed; the near_optimum rule's settings usable."""
    for i, replicate in enumerate(s.seeds):
        _seed(f"sweep.seeds[{i}]", replicate)
    if len(set(s.seeds)) != len(s.seeds):
        raise ConfigError(f"sweep.seeds: duplicate seeds in {list(s.seeds)}; each seed once")
    if seed in s.seeds:
        raise ConfigError(f"sweep.seeds: {list(s.seeds)} repeats train.seed={seed}; give other seeds")
    _choice("sweep.replicate", s.replicate, REPLICATE_RULES)
    _positive("sweep.replicate_sizes", s.replicate_sizes)
    _positive("sweep.replicate_tokens_per_param", s.replicate_tokens_per_param)
    for i, b in enumerate(s.replicate_budgets):
        if not any(math.isclose(b, x) for x in budgets):
            raise ConfigError(
                f"sweep.replicate_budgets[{i}]: {b:g} is not one of {key}: {[float(x) for x in budgets]}"
            )
