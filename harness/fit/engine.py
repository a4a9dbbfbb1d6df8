"""The verdict's pipeline on many rows of losses at once: profiles -> frontier -> hold-out -> checks.

One code path serves three callers: the fit (row 0, the observed losses), the bootstrap (rows redrawn
from the measured noise) and the calibration (rows simulated from known laws). `Design` holds what
stays fixed across rows: the points, their budgets and noise, the hold-out split, the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.fit.budgets import Budgets
from harness.fit.frontier import FrontierPoints, frontier_points, offset_power_law_batch
from harness.fit.holdout import Predictions, Split, predict_holdout
from harness.fit.isoflop import Profiles, profile_budgets
from harness.fit.observations import Points
from harness.fit.rules import FitRules
from harness.fit.verdict import CheckValues, budget_best, run_checks


@dataclass(frozen=True)
class Design:
    """What a row of losses is judged against: the points (N, D, C, replicate counts k), their
    budgets, each point's relative noise, the hold-out split (None: not possible), the known floor
    (None: unknown) and the rules (the IsoFLOP window, the deciding law, the thresholds)."""

    points: Points
    budgets: Budgets
    sigma: np.ndarray  # (m,)
    split: Split | None
    floor: float | None
    rules: FitRules


@dataclass(frozen=True)
class Rows:
    """Every stage's result for B rows of losses Y (B, m)."""

    Y: np.ndarray
    profiles: Profiles | None
    frontier: FrontierPoints
    frontier_fit: tuple[np.ndarray, np.ndarray]  # (B, 3) E, C0, alpha; (B,) ok
    holdout: dict[str, Predictions] | None
    targets: np.ndarray | None  # (B, q) the hold-out's targets among the frontier points
    checks: CheckValues


def evaluate_rows(design: Design, Y: np.ndarray) -> Rows:
    """Run the pipeline of the module docstring on each row of Y (B, m)."""
    p, b = design.points, design.budgets
    Y = np.atleast_2d(Y)
    window = design.rules.isoflop_window
    prof = profile_budgets(p.N, p.D, Y, p.k, design.sigma, b, window=window) if b.isoflop else None
    fp = frontier_points(p.C, Y, design.sigma, b, prof)
    params, ok = offset_power_law_batch(fp.x, fp.Y, fp.W)
    ok = ok & ((fp.W > 0).sum(axis=1) >= 4)
    hold, targets = (
        (None, None) if design.split is None else predict_holdout(fp, design.split.held, design.floor)
    )
    checks = run_checks(
        fp,
        (params, ok),
        budget_best(Y, design.sigma, fp, b),
        None if hold is None else hold[design.rules.holdout_law],
        design.rules,
    )
    return Rows(Y, prof, fp, (params, ok), hold, targets, checks)
