"""Percentile intervals from bootstrap samples, and whether each one can be trusted.

An interval is reliable when at most `max_failed` (10%) of the resamples failed for its analysis
and it contains its own point estimate. Otherwise it is reported as unreliable, never as a plain
interval: the surviving resamples are a biased subset (those where the fit happened to work), and
an interval that excludes the estimate measures that bias, not the noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.stats import percentile_interval

MAX_FAILED = 0.10


@dataclass(frozen=True)
class Intervals:
    """Named intervals of one analysis: bounds (lo, hi), reliable per name, the failed share."""

    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    reliable: dict[str, bool] = field(default_factory=dict)
    failed_share: float | None = None  # None: no bootstrap ran

    def get(self, name: str) -> tuple[float, float] | None:
        return self.bounds.get(name)

    def __bool__(self) -> bool:
        return bool(self.bounds)

    def to_dict(self) -> dict:
        return {
            "ci": {k: [lo, hi] for k, (lo, hi) in self.bounds.items()},
            "ci_reliable": dict(self.reliable),
            "failed_share": self.failed_share,
        }


def summarise(
    samples: np.ndarray,
    ok: np.ndarray,
    names: tuple[str, ...],
    estimates: dict[str, float],
    ci: float,
    *,
    max_failed: float = MAX_FAILED,
) -> Intervals:
    """Intervals of the columns of samples (B, len(names)) over the rows that are ok, with flags."""
    B = int(ok.size)
    if B == 0:
        return Intervals()
    failed = 1.0 - float(np.mean(ok))
    bounds, reliable = {}, {}
    for j, name in enumerate(names):
        lo, hi = percentile_interval(samples[ok, j], ci)
        bounds[name] = (lo, hi)
        est = estimates.get(name)
        est = float("nan") if est is None else est  # a degenerate fit has no point estimate
        tol = 1e-9 * max(abs(est), 1e-300)
        inside = bool(np.isfinite(est) and lo - tol <= est <= hi + tol)
        reliable[name] = failed <= max_failed and inside
    return Intervals(bounds, reliable, failed)
