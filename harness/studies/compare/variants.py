"""Each variant's own compute frontier, as its fit.json has it: a description beside the paired test.

harness.fit's `frontier_bootstrap` gives the frontier L(C) = E + (C0/C)^alpha with the intervals and
bootstrap samples of `fit_sweep` (the same draws), so the numbers are the ones in the variant's
fit.json. (The frontier keeps each budget's
minimum; the verdict does not rest on it: harness.studies.compare.paired uses every run.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.config import FitConfig
from harness.fit import frontier_bootstrap
from harness.report import build_observations
from harness.stats import percentile_interval

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

    def interval(self, column: int) -> Interval:
        """Bootstrap interval of E (0), C0 (1) or alpha (2)."""
        return percentile_interval(self.samples[:, column], self.ci)

    def row(self) -> dict:
        """The numbers comparison.json and .md show."""
        return {
            "variant": self.name, "alpha": self.alpha, "alpha_ci": self.interval(2), "E": self.E,
            "E_ci": self.interval(0), "r2": self.r2, "n_points": int(self.C.size),
        }  # fmt: skip


def fit_variant(name: str, rows: list[dict], cfg: FitConfig, design: str | None = None) -> VariantFit:
    """The frontier fit and bootstrap of `fit_sweep` on a variant's result rows (`design`: its sweep's
    declared design); FitError if impossible."""
    obs, _, _ = build_observations(rows, cfg, design=design)
    front, samples = frontier_bootstrap(obs, cfg)
    law = front.law
    return VariantFit(name, law.E, law.x0, law.alpha, front.r2, front.x, front.L, samples, cfg.ci)
