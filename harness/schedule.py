"""Learning-rate rules as small pure functions: per-size peak LR, warmup length, and the schedule.

Small-model scaling studies (Porian et al. 2024, "Resolving discrepancies in compute-optimal
scaling") found that laws come out clean when the warmup is no longer than about the parameter
count in tokens and the LR is tuned per size; under Adam the best peak LR of the hidden layers
falls roughly as 1/width (muP, Yang et al. 2022), which is the default rule here.
"""

from __future__ import annotations

import math

from harness.config import TrainConfig


def peak_lr(width: int, cfg: TrainConfig) -> float:
    """Peak LR for a model of this width: cfg.lr up to lr_ref_width, and above it by lr_rule: constant
    (cfg.lr everywhere); inverse_width, as 1/width; power, as width^-lr_exponent (the cpu preset's rule,
    fitted to an LR scan, configs/sweep/lr_scan.yaml). Narrower models keep cfg.lr (not raised): the scan
    found the optimum flat there, and it never makes the smallest runs less stable.
    """
    if cfg.lr_rule == "constant":
        return cfg.lr
    exponent = cfg.lr_exponent if cfg.lr_rule == "power" else 1.0
    return cfg.lr * min(1.0, cfg.lr_ref_width / width) ** exponent


def warmup_steps(params_total: int, steps: int, tokens_per_step: int, cfg: TrainConfig) -> int:
    """Warmup length in steps: min(warmup_tokens_per_param * N, warmup_max_frac * D), at least 1."""
    tokens = min(cfg.warmup_tokens_per_param * params_total, cfg.warmup_max_frac * steps * tokens_per_step)
    return max(1, min(steps, round(tokens / tokens_per_step)))


def lr_at(step: int, *, steps: int, warmup: int, peak: float, cfg: TrainConfig) -> float:
    """LR for optimiser step `step` (0-based) of a run of `steps` steps.

    Linear warmup to `peak`, then either cosine decay to final_lr_frac * peak at the last step, or
    WSD: constant until the last cooldown_frac of the run, then linear decay to final_lr_frac * peak.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    floor = cfg.final_lr_frac * peak
    if cfg.schedule == "cosine":
        progress = (step - warmup) / max(1, steps - 1 - warmup)
        return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    start = cooldown_start(steps, cfg)
    if step < start:
        return peak
    progress = (step - start + 1) / (steps - start)
    return peak + (floor - peak) * progress


def cooldown_start(steps: int, cfg: TrainConfig) -> int:
    """First step of a WSD run's linear cooldown (the last cooldown_frac of it, at least one step).

    Until then the LR of every WSD run with the same warmup and peak is the same, which is what lets
    a cooldown branch start from a constant-LR main run's state at exactly this step.
    """
    return steps - max(1, round(cfg.cooldown_frac * steps))
