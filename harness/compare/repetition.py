"""Repeated data against epochs: Muennighoff et al. 2023's effective data, fitted to the paired differences.

With U unique tokens seen R = epochs - 1 extra times, the effective data is D' = U + U R* (1 - exp(-R/R*)):
the k-th repetition of a token is worth exp(-k/R*) of a fresh one, so R* is the repetitions after which
repeated tokens have lost 1 - 1/e of their value (Muennighoff et al. found R* ~ 15 for large models).
Along the data axis the loss scales locally as D^-c, so repeated data costs

    d(R) = ln L(D') - ln L(D) = c ln(D / D') = c ln((1 + R) / (1 + R* (1 - exp(-R / R*))))

fitted to the budgets' mean differences (c >= 0 by least squares for each R* on a grid, R* by the
smallest residual). R*'s interval is where the residual sum of squares stays within chi2_1(ci) times
the error variance of a budget's mean of the best fit's (a profile interval). Saturating by
construction, the form cannot follow a loss that rises again as small models overfit: its largest
residual says how well it holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

R_STAR_GRID = np.geomspace(0.05, 1000, 400)  # repetitions


def repetition_cost(R: np.ndarray, r_star: float) -> np.ndarray:
    """ln(D / D') at R extra repetitions: the log-ratio of seen to effective data."""
    R = np.asarray(R, dtype=float)
    return np.log((1 + R) / (1 + r_star * (1 - np.exp(-R / r_star))))


@dataclass(frozen=True)
class RepetitionFit:
    """d(R) = c ln(D / D'(R; R*)) fitted to the budgets' mean differences (module docstring)."""

    c: float  # local data exponent of the loss
    r_star: float  # repetitions after which a repeated token keeps 1/e of its value
    r_star_ci: tuple[float, float]  # profile interval (grid bounds when it reaches them)
    epochs: np.ndarray  # (k,) of the budgets
    max_residual: float  # largest |d - fit| over the budgets
    epochs_to_smallest: float  # epochs at which the fitted cost reaches the smallest effect (nan: never)

    def cost(self, epochs: np.ndarray) -> np.ndarray:
        """The fitted ln-loss ratio at these epochs."""
        return self.c * repetition_cost(np.maximum(np.asarray(epochs) - 1, 0), self.r_star)


def fit_repetition(
    epochs: np.ndarray, d: np.ndarray, se: float, *, smallest: float, ci: float = 0.95
) -> RepetitionFit | None:
    """The fit of the module docstring to mean differences d at `epochs` (each with error `se`); None
    without at least 3 budgets of which one repeats data (epochs > 1)."""
    epochs, d = np.asarray(epochs, dtype=float), np.asarray(d, dtype=float)
    if epochs.size < 3 or not (epochs > 1).any():
        return None
    R = np.maximum(epochs - 1, 0)
    X = np.array([repetition_cost(R, r) for r in R_STAR_GRID])  # (grid, k)
    c = np.clip((X @ d) / np.maximum(np.sum(X * X, axis=1), 1e-300), 0, None)
    rss = np.sum((d[None, :] - c[:, None] * X) ** 2, axis=1)
    best = int(np.argmin(rss))
    inside = R_STAR_GRID[rss <= rss[best] + float(stats.chi2.ppf(ci, 1)) * se**2]
    fit = RepetitionFit(
        c=float(c[best]),
        r_star=float(R_STAR_GRID[best]),
        r_star_ci=(float(inside.min()), float(inside.max())),
        epochs=epochs,
        max_residual=float(np.max(np.abs(d - c[best] * X[best]))),
        epochs_to_smallest=math.nan,
    )
    grid = np.geomspace(1, 1e4, 2000)
    over = grid[fit.cost(grid) >= smallest]
    return fit if over.size == 0 else replace(fit, epochs_to_smallest=float(over[0]))
