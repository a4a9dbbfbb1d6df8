"""Bootstrap over runs: resamples as weight rows, and percentile intervals.

A resample draws n runs with replacement from the n runs; it is stored as a row of counts (how
often each run was drawn), which every `refit_*` function takes as per-point weights, so all
resamples of one fit are solved as one batch. Resamples whose refit fails (too few distinct
sizes left, no minimum, no convergence) are dropped and counted, never patched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def resample_counts(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) counts: row b says how often each of n runs was drawn in resample b."""
    if resamples <= 0 or n == 0:
        return np.zeros((0, n))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)


def percentile_interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    """The central ci share of the finite samples: (q_(1-ci)/2, q_(1+ci)/2); nan without samples."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(s, [(1 - ci) / 2, (1 + ci) / 2])
    return (float(lo), float(hi))


def intervals(samples: np.ndarray, names: tuple[str, ...], ci: float) -> dict[str, tuple[float, float]]:
    """Percentile interval of each column of samples (B, k), keyed by names."""
    return {name: percentile_interval(samples[:, j], ci) for j, name in enumerate(names)}


@dataclass(frozen=True)
class BootstrapInfo:
    """How the intervals were made, and how many resamples each analysis dropped."""

    resamples: int
    ci: float
    seed: int
    failed: dict[str, int] = field(default_factory=dict)
