"""How noisy is one run's loss? The relative noise (standard deviation of log L) that the bootstrap
draws, the verdict's checks are measured in, and the calibration simulates.

Sources, the first available wins:
    seeds        replicate runs (other seeds of one configuration): the pooled standard deviation of
                 log L around each configuration's mean (needs >= 2 degrees of freedom);
    val_loss_se  each run's validation-loss standard error over its loss (the eval set's own sampling
                 error; blind to seed-to-seed noise);
    residuals    the scatter of log L, dof-corrected, around each IsoFLOP budget's near-minimum
                 parabola (local: a law that fails over the range is not taken for noise), else around
                 the parametric fit L(N, D), else around the frontier law (these absorb part of any
                 departure from the law, so checks built on them are more lenient).
Every level is floored at `floor` (fit.min_noise): no real run reproduces its loss to better than
that, and a noiseless synthetic sweep must not turn rounding into a failed check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.fit.observations import Points

MIN_SEED_DOF = 2


@dataclass(frozen=True)
class Noise:
    """sigma (n_kept,): relative noise of each kept run; level: their median; where it came from."""

    sigma: np.ndarray
    level: float
    source: str  # seeds | val_loss_se | residuals | floor
    detail: str  # one sentence with the numbers
    dof: int  # degrees of freedom behind the level (0 for val_loss_se and floor)

    def of_points(self, points: Points) -> np.ndarray:
        """(m,) relative noise of each point's loss: its runs' noise averaged over its k runs."""
        var = np.bincount(points.point, weights=self.sigma**2, minlength=points.size) / points.k
        return np.sqrt(var / points.k)


def estimate_noise(points: Points, *, floor: float, residuals: tuple[float, int, str] | None = None) -> Noise:
    """The noise level by the first available source of the module docstring."""
    n = points.runs.size
    if points.rep_dof >= MIN_SEED_DOF:
        s = float(np.sqrt(points.rep_ss / points.rep_dof))
        level = max(s, floor)
        detail = (
            f"seed noise {s:.3%} of the loss from {int((points.k > 1).sum())} replicated configurations "
            f"({points.rep_dof} degrees of freedom)"
        )
        return Noise(np.full(n, level), level, "seeds", _floored(detail, s, floor), points.rep_dof)
    se = points.obs.L_se[points.runs] if points.obs.L_se is not None else None
    if se is not None and np.isfinite(se).any():
        rel = se / points.obs.L[points.runs]
        typical = float(np.nanmedian(rel))
        sigma = np.maximum(np.where(np.isfinite(rel), rel, typical), floor)
        detail = f"validation-loss standard error, median {typical:.3%} of the loss (no replicate seeds)"
        return Noise(sigma, float(np.median(sigma)), "val_loss_se", _floored(detail, typical, floor), 0)
    if residuals is not None and np.isfinite(residuals[0]):
        rms, dof, around = residuals
        level = max(rms, floor)
        detail = (
            f"residual scatter {rms:.3%} of the loss around {around} ({dof} degrees of freedom; no "
            "replicate seeds or val_loss_se)"
        )
        return Noise(np.full(n, level), level, "residuals", _floored(detail, rms, floor), dof)
    detail = f"no measure of noise (no replicates, val_loss_se or residual freedom): the floor {floor:.3%}"
    return Noise(np.full(n, floor), floor, "floor", detail, 0)


def _floored(detail: str, measured: float, floor: float) -> str:
    return detail + (f", raised to the floor {floor:.3%}" if measured < floor else "")
