"""The paired two-way layout: differences d[b, j] at budgets b (regressor x = ln C, centred) and seeds j.

A seed's effect is shared by all its budgets (its data order, its init) and each run has its own error;
from the differences, with Student's t intervals:
    offset   the mean of all d (the difference at the budgets' geometric middle C_mid)
    slope    of the line through the budgets' means, against ln C
    top      the mean at the largest budget, where scale matters most
    lack of fit   F test of the line against the budgets' means, and its shape (a parabola's curvature)
Used by the ingredient comparisons (harness.studies.compare.paired builds the differences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.stats.estimates import Estimate


class TooFewBudgets(ValueError):
    """Fewer than 2 budgets: an offset and a slope cannot be told apart."""


@dataclass(frozen=True)
class Pairs:
    """The paired differences: d[b, j] at the shared budget of compute C[b] and seed seeds[j]."""

    C: np.ndarray  # (k,) the shared budgets' compute (the reference's), ascending
    seeds: np.ndarray  # (n,) int
    d: np.ndarray  # (k, n) ln L_variant - ln L_reference
    epochs: np.ndarray  # (k,) the variant's passes over its data at each budget (0: fresh data)
    dropped: int  # budgets left out because some seed lacks them (a diverged run, say)


@dataclass(frozen=True)
class PairedTest:
    """What the differences say (module docstring); per-budget arrays are ascending in compute."""

    C: np.ndarray  # (k,) shared budgets
    C_mid: float  # where `offset` is measured: the geometric mean of the budgets' compute
    seeds: np.ndarray  # (n,) paired seeds
    d: np.ndarray  # (k, n) the differences
    epochs: np.ndarray  # (k,) the variant's epochs over its data
    sigma_run: float  # noise of one difference about its seed's and budget's effects
    sigma_seed: float  # spread of a seed's effect shared by all its budgets
    offset: Estimate
    slope: Estimate
    top: Estimate  # its error is also that of every budget's mean
    lack_of_fit_p: float  # nan when untestable (one seed, or two budgets)
    curvature: float  # x^2 coefficient of a parabola through the budgets' means (nan below 3 budgets)
    dropped: int = 0

    @property
    def mean(self) -> np.ndarray:
        return self.d.mean(axis=1)

    def budget_interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Each budget's mean difference +- its error (that of the top budget's: same seeds, same noise)."""
        lo, hi = self.top.interval(level)
        return self.mean - (self.top.value - lo), self.mean + (hi - self.top.value)


def paired_test(p: Pairs) -> PairedTest:
    """Offset, slope and top gap of the differences with the seeds' noise, from a two-way layout
    (budget x seed): a seed's effect shared by its budgets (its data order, its init) is part of the
    offset's and the top gap's noise, not of the slope's. TooFewBudgets below 2 budgets.

        offset  mean of all d; se^2 = MS_seed / (k n), df n - 1
        slope   line through the budgets' means; se^2 = MS_e / (n Sxx), df (k - 1)(n - 1)
        top     mean of the top budget; se^2 = (MS_seed + (k - 1) MS_e) / (k n), Satterthwaite df
        lack of fit   F = n SS(budget means about the line) / (k - 2) / MS_e; its shape: the curvature
                of a parabola through the budgets' means
    With one seed the line's residuals are the only noise (df k - 2, for all three; no lack of fit).
    """
    d = p.d
    k, n = d.shape
    if k < 2:
        raise TooFewBudgets(f"only {k} shared budget: an offset and a slope need at least 2")
    x = np.log(p.C)
    x = x - x.mean()
    mean_b, mean_s, m = d.mean(axis=1), d.mean(axis=0), float(d.mean())
    sxx = float(x @ x)
    slope = float(x @ mean_b) / sxx
    ss_lof = n * float(np.sum((mean_b - m - slope * x) ** 2))
    if n > 1:
        df_s, df_e = n - 1, (k - 1) * (n - 1)
        ms_s = k * float(np.sum((mean_s - m) ** 2)) / df_s
        ms_e = float(np.sum((d - mean_b[:, None] - mean_s[None, :] + m) ** 2)) / df_e
        a, b = ms_s / k, (k - 1) * ms_e / k
        df_top = (a + b) ** 2 / (a**2 / df_s + b**2 / df_e) if a + b > 0 else 0.0
        se = (math.sqrt(ms_s / (k * n)), math.sqrt(ms_e / (n * sxx)), math.sqrt((a + b) / n))
        dfs = (df_s, df_e, df_top)
        lof_p = float(stats.f.sf(ss_lof / (k - 2) / ms_e, k - 2, df_e)) if k > 2 and ms_e > 0 else math.nan
        sigma_run, sigma_seed = math.sqrt(ms_e), math.sqrt(max(0.0, (ms_s - ms_e) / k))
    else:  # one seed: the line's residuals are all the noise there is
        df = k - 2
        s2 = ss_lof / df if df > 0 else math.nan
        se = (math.sqrt(s2 / k), math.sqrt(s2 / sxx), math.sqrt(s2))
        dfs, lof_p, sigma_run, sigma_seed = (df, df, df), math.nan, math.sqrt(s2), math.nan
    return PairedTest(
        C=p.C, C_mid=float(np.exp(np.log(p.C).mean())), seeds=p.seeds, d=d, epochs=p.epochs,
        sigma_run=sigma_run, sigma_seed=sigma_seed,
        offset=Estimate(m, se[0], dfs[0]),
        slope=Estimate(slope, se[1], dfs[1]),
        top=Estimate(float(mean_b[-1]), se[2], dfs[2]),
        lack_of_fit_p=lof_p, dropped=p.dropped,
        curvature=float(np.polyfit(x, mean_b, 2)[0]) if k > 2 else math.nan,
    )  # fmt: skip
