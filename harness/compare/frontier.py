"""Each variant's own compute frontier, as its fit.json has it: a description beside the paired test.

A thin adapter over harness.fit: the frontier L(C) = E + (C0/C)^alpha and its bootstrap over runs,
drawn from the same generator stream and settings as `fit_sweep`, so that the intervals are the ones
in the variant's fit.json. (The envelope keeps only each budget's best run; the verdict does not rest
on it: harness.compare.paired uses every run.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.config import FitConfig
from harness.fit import (
    envelope_weights,
    fit_frontier,
    group_budgets,
    percentile_interval,
    refit_offset_power_law,
    resample_counts,
)
from harness.report import build_observations
from harness.report.plots import frontier_band

Interval = tuple[float, float]


@dataclass(frozen=True)
class VariantFit:
    """One variant's frontier fit: the law, its points, its bootstrap samples (E, C0, alpha)."""

    name: str
    E: float
    C0: float
    alpha: float
    r2: float
    C: np.ndarray  # frontier points
    L: np.ndarray
    samples: np.ndarray  # (B, 3) kept bootstrap refits
    ci: float

    def loss_at(self, C: np.ndarray | float) -> np.ndarray | float:
        return self.E + (self.C0 / C) ** self.alpha

    def interval(self, column: int) -> Interval:
        """Bootstrap interval of E (0), C0 (1) or alpha (2)."""
        return percentile_interval(self.samples[:, column], self.ci)

    def band(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        return frontier_band(self.samples, C, self.ci)

    def row(self) -> dict:
        """The numbers comparison.json and .md show."""
        return {
            "variant": self.name, "alpha": self.alpha, "alpha_ci": self.interval(2), "E": self.E,
            "E_ci": self.interval(0), "r2": self.r2, "n_points": int(self.C.size),
        }  # fmt: skip


def fit_variant(name: str, rows: list[dict], cfg: FitConfig) -> VariantFit:
    """The frontier fit and bootstrap of `fit_sweep` on a variant's result rows; FitError if impossible."""
    obs, _, _ = build_observations(rows, cfg)
    budgets = group_budgets(obs.C, obs.budget)
    groups = budgets.ids if budgets.isoflop else None
    front = fit_frontier(obs.C, obs.L, groups=groups)
    rng = np.random.default_rng(cfg.seed).spawn(2)[0]
    counts = resample_counts(obs.C.size, cfg.bootstrap, rng)
    samples = np.zeros((0, 3))
    if counts.shape[0]:
        W = envelope_weights(obs.C, obs.L, counts, groups=groups)
        s, ok = refit_offset_power_law(obs.C, obs.L, W, front)
        samples = s[ok]
    law = front.law
    return VariantFit(name, law.E, law.x0, law.alpha, front.r2, front.x, front.L, samples, cfg.ci)
