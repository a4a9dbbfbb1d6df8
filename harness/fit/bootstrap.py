"""The bootstrap: the design kept, every run's loss redrawn from its measured noise.

A resample keeps every trained configuration and redraws each run's loss as L exp(sigma z), z a
standard normal and sigma the run's relative noise (`harness.fit.noise`: from replicate seeds when
the sweep has them, else from val_loss_se, else from the residual scatter); a configuration trained
k times takes the mean of its k runs' draws (noise sigma / sqrt(k)); a run's training curve moves
with its final loss. Every analysis is then redone on each resample by the same code as the fit
(`fit_sweep`: windows, envelopes, starts), and percentile intervals are read off.

Why not resample runs: with 3-5 sizes per budget, a resample of runs (even within budgets) loses
sizes, so a budget's best run swaps for a mis-sized one in most resamples and the interval measures
the grid's coarseness (the old default sweep's alpha [0.132, 0.527]), not the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.fit.noise import Noise
from harness.fit.observations import Points

SCHEME = "noise: each run's loss redrawn as L exp(sigma z) with the design kept"


def draw_run_noise(noise: Noise, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n_kept) log-loss shifts sigma_i z_bi of the kept runs."""
    return noise.sigma[None, :] * rng.standard_normal((max(resamples, 0), noise.sigma.size))


def point_losses(points: Points, shifts: np.ndarray) -> np.ndarray:
    """(B, m) the points' losses under run shifts (B, n_kept): each point moves by its runs' mean shift."""
    onehot = np.zeros((shifts.shape[1], points.size))
    onehot[np.arange(shifts.shape[1]), points.point] = 1.0
    return points.L[None, :] * np.exp((shifts @ onehot) / points.k[None, :])


@dataclass(frozen=True)
class BootstrapInfo:
    """How the intervals were made (each interval carries its own failed share)."""

    resamples: int
    ci: float
    seed: int
    scheme: str = SCHEME
