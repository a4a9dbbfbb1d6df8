"""Everything fixed before a row of losses is judged: points, budgets, the parametric fit, the noise,
the verdict's design; and the rows themselves (the observed losses, then the bootstrap's draws)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.config import FitConfig
from harness.fit.bootstrap import draw_run_noise, point_losses
from harness.fit.budgets import Budgets, group_budgets
from harness.fit.engine import Design
from harness.fit.holdout import split_holdout
from harness.fit.laws import FitError
from harness.fit.noise import Noise, estimate_noise
from harness.fit.observations import Observations, Points, prepare_points
from harness.fit.parametric import ParametricFit, fit_parametric
from harness.fit.verdict import Thresholds


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


def prepare_fit(obs: Observations, cfg: FitConfig, *, bayes_loss: float | None = None) -> Prepared:
    """Points, budgets, the parametric fit, the noise and the verdict's design; FitError on unusable input
    (fewer than 4 distinct runs, one compute value or one model size)."""
    points = prepare_points(obs)
    _check_input(points)
    budgets = group_budgets(points.C, points.N, points.budget, obs.design)
    skipped: dict[str, str] = {}
    # The compute-optimal allocation needs C = k N D: exactly 6 under Kaplan's count, else the
    # sweep's own typical ratio (the full count adds attention and embedding FLOPs to 6ND).
    k = 6.0 if obs.flops == "6n" else float(np.median(points.C / (points.N * points.D)))
    par, rms, dof = None, None, 0
    try:
        par = fit_parametric(points.N, points.D, points.L, k=k)
        dof = points.size - 5
        rms = float(np.sqrt(np.sum(np.log(points.L / par.surface.loss(points.N, points.D)) ** 2) / dof))
    except FitError as exc:
        skipped["parametric"] = str(exc)
    noise = estimate_noise(points, floor=cfg.min_noise, residual_rms=rms, residual_dof=dof)
    split = None
    try:
        split = split_holdout(points, budgets, frac=cfg.holdout_frac)
    except FitError as exc:
        skipped["holdout"] = str(exc)
    th = Thresholds(cfg.max_misfit, cfg.max_rise_z, cfg.max_holdout_z, cfg.max_holdout_error)
    design = Design(
        points, budgets, noise.of_points(points), cfg.isoflop_window, split, bayes_loss, cfg.holdout_law, th
    )
    return Prepared(points, budgets, par, noise, design, skipped)


def draw_rows(prep: Prepared, cfg: FitConfig) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """(1 + B, m) losses: the observed row, then cfg.bootstrap redrawn ones; the run shifts behind
    them (B, n_kept); and the generator the calibration continues with."""
    rng_boot, rng_cal = np.random.default_rng(cfg.seed).spawn(2)
    shifts = draw_run_noise(prep.noise, cfg.bootstrap, rng_boot)
    Y = np.vstack([prep.points.L[None, :], point_losses(prep.points, shifts)])
    return Y, shifts, rng_cal
