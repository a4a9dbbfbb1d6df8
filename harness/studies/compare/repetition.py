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
residual says how well it holds, and R* at the grid's edge says it does not. Beside the form, the data
say directly from how many epochs repeated tokens lose value: the onset, the fewest epochs from which
every budget's difference is at least the smallest effect with its interval above 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

R_STAR_GRID = np.geomspace(0.05, 1000, 400)  # repetitions


def repetition_cost(R: np.ndarray, r_star: float) -> np.ndarray:
    """ln(D / D') at R extra repetitions: the log-ratio of seen to effective data."""
    R = np.asarray(R, dtype=float)
    return np.log((1 + R) / (1 + r_star * (1 - np.exp(-R / r_star))))


@dataclass(frozen=True)
class RepetitionFit:
    """d(R) = c ln(D / D'(R; R*)) fitted to the budgets' mean differences, and the onset (see above)."""

    c: float  # local data exponent of the loss
    r_star: float  # repetitions after which a repeated token keeps 1/e of its value
    r_star_ci: tuple[float, float]  # profile interval (grid bounds when it reaches them)
    at_bound: bool  # R* at the grid's edge: the form does not describe these data
    epochs: np.ndarray  # (k,) of the budgets
    max_residual: float  # largest |d - fit| over the budgets
    onset: float  # epochs from which repeated data costs at least the smallest effect (nan: never)


def onset_epochs(epochs: np.ndarray, d: np.ndarray, lower: np.ndarray, smallest: float) -> float:
    """The fewest epochs from which every budget's d is >= smallest with its lower bound > 0 (nan: none)."""
    order = np.argsort(epochs)
    costly = (d[order] >= smallest) & (lower[order] > 0)
    if not costly[-1]:
        return math.nan
    first = len(costly) - int(np.argmin(costly[::-1])) if not costly.all() else 0
    return float(epochs[order][first])


def fit_repetition(
    epochs: np.ndarray, d: np.ndarray, se: float, lower: np.ndarray, *, smallest: float, ci: float = 0.95
) -> RepetitionFit | None:
    """The fit and onset of the module docstring for mean differences d at `epochs` (each with error
    `se` and interval lower bound `lower`); None without at least 3 budgets of which one repeats data."""
    epochs, d = np.asarray(epochs, dtype=float), np.asarray(d, dtype=float)
    if epochs.size < 3 or not (epochs > 1).any():
        return None
    R = np.maximum(epochs - 1, 0)
    X = np.array([repetition_cost(R, r) for r in R_STAR_GRID])  # (grid, k)
    c = np.clip((X @ d) / np.maximum(np.sum(X * X, axis=1), 1e-300), 0, None)
    rss = np.sum((d[None, :] - c[:, None] * X) ** 2, axis=1)
    best = int(np.argmin(rss))
    inside = R_STAR_GRID[rss <= rss[best] + float(stats.chi2.ppf(ci, 1)) * se**2]
    return RepetitionFit(
        c=float(c[best]),
        r_star=float(R_STAR_GRID[best]),
        r_star_ci=(float(inside.min()), float(inside.max())),
        at_bound=best in (0, R_STAR_GRID.size - 1),
        epochs=epochs,
        max_residual=float(np.max(np.abs(d - c[best] * X[best]))),
        onset=onset_epochs(epochs, d, np.asarray(lower, dtype=float), smallest),
    )
