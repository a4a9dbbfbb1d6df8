"""Everything fixed before a row of losses is judged: points, budgets, the parametric fit, the noise,
the verdict's design; and the rows themselves (the observed losses, then the bootstrap's draws)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.config import FitConfig
from harness.fit.bootstrap import draw_run_noise, point_losses
from harness.fit.budgets import Budgets, group_budgets
from harness.fit.engine import Design
from harness.fit.frontier import frontier_points, offset_power_law_batch
from harness.fit.holdout import split_holdout
from harness.fit.isoflop import WIDE, Profiles, profile_budgets
from harness.fit.laws import FitError, power_law_values
from harness.fit.noise import Noise, estimate_noise
from harness.fit.observations import Observations, Points, prepare_points
from harness.fit.parametric import ParametricFit, fit_parametric
from harness.fit.rules import FitRules

MIN_WINDOW_DOF = 3  # the parabolas' residuals measure the noise once they have this much freedom


@dataclass(frozen=True)
class Prepared:
    """Everything fixed before the first row of losses is judged."""

    points: Points
    budgets: Budgets
    parametric: ParametricFit | None
    noise: Noise
    design: Design
    skipped: dict[str, str]


def _check_input(points: Points) -> None:
    n = points.size
    if n < 4:
        raise FitError(
            f"{n} distinct runs; the frontier L(C) = E + (C0/C)^alpha has 3 parameters and needs at least 4"
        )
    if np.unique(points.C).size == 1:
        raise FitError(
            f"all {n} runs have the same compute C = {points.C[0]:.4g}; a scaling fit needs several budgets"
        )
    if np.unique(points.N).size == 1:
        raise FitError(
            f"all {n} runs have the same size N = {points.N[0]:.4g}; a scaling fit needs several sizes"
        )


def _window_scatter(points: Points, budgets: Budgets, prof: Profiles) -> tuple[float, int]:
    """Pooled RMS of log L around each budget's near-minimum parabola, and its degrees of freedom."""
    ss, dof = 0.0, 0
    for g in np.flatnonzero(prof.status[0] <= WIDE):
        idx = budgets.members(g)
        idx = idx[np.argsort(points.N[idx], kind="stable")]
        on = prof.window[g][0]
        fit = np.polyval(prof.coeffs[g][0], np.log(points.N[idx]) - prof.center[g])
        ss += float(np.sum(np.log(points.L[idx] / fit)[on] ** 2))
        dof += int(on.sum()) - 3
    return (float(np.sqrt(ss / dof)) if dof > 0 else float("nan")), dof


def _residual_scatter(
    points: Points, budgets: Budgets, par: ParametricFit | None, window: float
) -> tuple[float, int, str] | None:
    """(RMS of log residuals, degrees of freedom, around what) for the noise of last resort: around the
    budgets' near-minimum parabolas (local, so a law that does not hold over the whole range does not
    count as noise: 0.14-0.20% on Porian et al.'s data, against 2-9% around their parametric fit), else
    around the parametric fit, else around the frontier law; None without freedom."""
    unit = np.ones(points.size)
    prof = None
    if budgets.isoflop:
        prof = profile_budgets(points.N, points.D, points.L, points.k, unit, budgets, window=window)
        rms, dof = _window_scatter(points, budgets, prof)
        if dof >= MIN_WINDOW_DOF:
            return rms, dof, "each budget's near-minimum parabola"
    if par is not None and points.size > 5:
        r = np.log(points.L / par.surface.loss(points.N, points.D))
        return (
            float(np.sqrt(np.sum(r * r) / (points.size - 5))),
            points.size - 5,
            "the parametric fit L(N, D)",
        )
    fp = frontier_points(points.C, points.L[None, :], unit, budgets, prof)
    params, ok = offset_power_law_batch(fp.x, fp.Y, fp.W)
    q = int((fp.W[0] > 0).sum())
    if not ok[0] or q <= 3:
        return None
    r = np.where(fp.W[0] > 0, np.log(fp.Y[0] / power_law_values(params, fp.x)[0]), 0.0)
    return float(np.sqrt(np.sum(r * r) / (q - 3))), q - 3, "the frontier law E + (C0/C)^alpha"


def prepare_fit(obs: Observations, rules: FitRules, *, bayes_loss: float | None = None) -> Prepared:
    """Points, budgets, the parametric fit, the noise and the verdict's design under `rules`; FitError on
    unusable input (fewer than 4 distinct runs, one compute value or one model size)."""
    points = prepare_points(obs)
    _check_input(points)
    budgets = group_budgets(points.C, points.N, points.budget, obs.design)
    skipped: dict[str, str] = {}
    # The compute-optimal allocation needs C = k N D: exactly 6 under Kaplan's count, else the
    # sweep's own typical ratio (the full count adds attention and embedding FLOPs to 6ND).
    k = 6.0 if obs.flops == "6n" else float(np.median(points.C / (points.N * points.D)))
    par = None
    try:
        par = fit_parametric(points.N, points.D, points.L, k=k)
    except FitError as exc:
        skipped["parametric"] = str(exc)
    scatter = _residual_scatter(points, budgets, par, rules.isoflop_window)
    noise = estimate_noise(points, floor=rules.min_noise, residuals=scatter)
    split = None
    try:
        split = split_holdout(points, budgets, frac=rules.holdout_frac)
    except FitError as exc:
        skipped["holdout"] = str(exc)
    design = Design(points, budgets, noise.of_points(points), split, bayes_loss, rules)
    return Prepared(points, budgets, par, noise, design, skipped)


def draw_rows(prep: Prepared, cfg: FitConfig) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """(1 + B, m) losses: the observed row, then cfg.bootstrap redrawn ones; the run shifts behind
    them (B, n_kept); and the generator the calibration continues with."""
    rng_boot, rng_cal = np.random.default_rng(cfg.seed).spawn(2)
    shifts = draw_run_noise(prep.noise, cfg.bootstrap, rng_boot)
    Y = np.vstack([prep.points.L[None, :], point_losses(prep.points, shifts)])
    return Y, shifts, rng_cal
