"""Estimates with their uncertainty, and what they show: percentile intervals of bootstrap samples,
Student's t intervals of an estimate with a standard error, and the two tests every study decides by:

    effect       its (1 - level) interval excludes 0 and the estimate is at least the smallest effect
                 worth reporting
    equivalent   two one-sided tests (TOST) at `level` against -smallest and +smallest: its (1 - 2 level)
                 interval lies inside (-smallest, +smallest)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


def percentile_interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    """The central ci share of the finite samples: (q_(1-ci)/2, q_(1+ci)/2); nan without samples."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(s, [(1 - ci) / 2, (1 + ci) / 2])
    return (float(lo), float(hi))


@dataclass(frozen=True)
class Estimate:
    """A number with its standard error and the degrees of freedom of that error (Student's t)."""

    value: float
    se: float
    df: float

    def interval(self, level: float) -> tuple[float, float]:
        """Two-sided `level` interval (nan when there is no noise estimate)."""
        if not (self.df > 0 and math.isfinite(self.se)):
            return (math.nan, math.nan)
        h = float(stats.t.ppf((1 + level) / 2, self.df)) * self.se
        return (self.value - h, self.value + h)


def is_effect(e: Estimate, smallest: float, level: float) -> bool:
    """Significant at `level` (two-sided) and at least `smallest` in size."""
    lo, hi = e.interval(1 - level)
    return (lo > 0 or hi < 0) and abs(e.value) >= smallest


def is_equivalent(e: Estimate, smallest: float, level: float) -> bool:
    """Two one-sided tests at `level`: the effect lies within (-smallest, +smallest)."""
    lo, hi = e.interval(1 - 2 * level)
    return -smallest < lo and hi < smallest
