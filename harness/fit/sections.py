"""The fit's sections read off the rows of losses: each number from row 0 (the observed losses), its
interval from the other rows (the bootstrap's draws), as `fit_sweep` assembles them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from harness.config import FitConfig
from harness.fit.calibration import FLOOR_SHARE, Calibration, calibrate, make_truths
from harness.fit.engine import Rows
from harness.fit.frontier import (
    LawFit,
    envelope_mask,
    fit_frontier,
    fit_offset_power_law,
    fit_power_law,
    kaplan_points,
    offset_power_law_batch,
    power_law_batch,
)
from harness.fit.holdout import LAWS, MIN_TRAIN, Holdout, LawPrediction
from harness.fit.intervals import summarise
from harness.fit.isoflop import IsoflopFit, allocation_exponents, fit_isoflop
from harness.fit.laws import FitError, power_law_values
from harness.fit.observations import Points
from harness.fit.parametric import ParametricFit, fit_parametric, fit_surface_with_floor, refit_parametric
from harness.fit.prepare import Prepared
from harness.fit.result import GroundTruth, PerDecade

LAW_PARAMS = ("E", "C0", "alpha")


def frontier_section(rows: Rows, cfg: FitConfig) -> tuple[LawFit, np.ndarray]:
    """The frontier law on row 0 with intervals from the other rows, and its kept samples (E, C0, alpha)."""
    fit = fit_frontier(rows.frontier)
    params, ok = rows.frontier_fit
    law = fit.law
    est = {"E": law.E, "C0": law.x0, "alpha": law.alpha}
    ci = summarise(params[1:], ok[1:], LAW_PARAMS, est, cfg.ci)
    return replace(fit, ci=ci), params[1:][ok[1:]]


def per_decade(fit: LawFit, samples: np.ndarray, cfg: FitConfig) -> PerDecade:
    """What each 10x of compute buys on the frontier law: the cut in reducible loss 1 - 10^-alpha,
    and the loss gained over the last decade up to the top frontier point, L(C_top / 10) - L(C_top)."""
    C_top = float(fit.x.max())

    def values(params: np.ndarray) -> np.ndarray:
        at = power_law_values(params, np.array([C_top / 10, C_top]))
        return np.column_stack([1 - 10.0 ** -params[:, 2], at[:, 0] - at[:, 1]])

    law = fit.law
    point = values(np.array([[law.E, law.x0, law.alpha]]))[0]
    est = {"cut": float(point[0]), "nats": float(point[1])}
    ci = summarise(values(samples), np.ones(len(samples), bool), ("cut", "nats"), est, cfg.ci)
    ci = replace(
        ci,
        failed_share=fit.ci.failed_share,
        reliable={k: v and fit.ci.reliable.get("alpha", False) for k, v in ci.reliable.items()},
    )
    return PerDecade(cut=est["cut"], nats=est["nats"], C_top=C_top, ci=ci)


def pure_section(rows: Rows, frontier: LawFit, cfg: FitConfig) -> LawFit:
    """The pure power law through the same frontier points, with intervals."""
    fp = rows.frontier
    fit = fit_power_law(frontier.x, frontier.L, name="power law", xname="C", index=frontier.index)
    params, ok = power_law_batch(fp.x, fp.Y[1:], fp.W[1:])
    est = {"C0": fit.law.x0, "alpha": fit.law.alpha}
    return replace(fit, ci=summarise(params[:, 1:], ok, ("C0", "alpha"), est, cfg.ci))


def _law_with_intervals(
    x, L_rows, W_rows, index, *, name: str, xname: str, x0: str, cfg: FitConfig
) -> LawFit:
    """E + (x0/x)^alpha through row 0's weighed points, intervals from the other rows."""
    on = np.flatnonzero(W_rows[0] > 0)
    fit = fit_offset_power_law(x[on], L_rows[0, on], name=name, xname=xname, index=index[on])
    params, ok = offset_power_law_batch(x, L_rows[1:], W_rows[1:])
    est = {"E": fit.law.E, x0: fit.law.x0, "alpha": fit.law.alpha}
    return replace(fit, ci=summarise(params, ok, ("E", x0, "alpha"), est, cfg.ci))


def kaplan_section(points: Points, Y: np.ndarray, vary: str, cfg: FitConfig) -> LawFit:
    """Kaplan's L(N) at the largest token budget or L(D) at the largest model, with intervals."""
    idx, name = kaplan_points(points.N, points.D, vary=vary)
    x = (points.N if vary == "N" else points.D)[idx]
    W = np.ones((Y.shape[0], idx.size))
    return _law_with_intervals(x, Y[:, idx], W, idx, name=name, xname=vary, x0=f"{vary}0", cfg=cfg)


def curves_section(prep: Prepared, shifts: np.ndarray, cfg: FitConfig) -> LawFit:
    """The envelope of every eval point of every kept run (Kaplan's L(C) from training curves); in a
    bootstrap row a run's curve moves with its final loss."""
    obs, points = prep.points.obs, prep.points
    if not obs.has_curves:
        raise FitError("no training curves given")
    kept = np.full(obs.run_id.size, -1)
    kept[points.runs] = np.arange(points.runs.size)
    on = kept[obs.curve_run] >= 0
    run, C, L = kept[obs.curve_run[on]], obs.curve_C[on], obs.curve_L[on]
    rows = np.vstack([L[None, :], L[None, :] * np.exp(shifts[:, run])])
    W = envelope_mask(C, rows).astype(float)
    return _law_with_intervals(
        C, rows, W, np.arange(C.size), name="frontier of the curves", xname="C", x0="C0", cfg=cfg
    )


def isoflop_section(prep: Prepared, rows: Rows, cfg: FitConfig) -> IsoflopFit:
    """Approach 2 on row 0; intervals of a, b, D/N and of each budget's N_opt and L_opt from the others."""
    p, b = prep.points, prep.budgets
    if not b.isoflop:
        raise FitError(f"the runs do not come in compute budgets ({b.rule})")
    window = prep.design.rules.isoflop_window
    fit, _, why = fit_isoflop(p.N, p.D, p.L, p.k, prep.design.sigma, b, window=window)
    if fit is None:
        raise FitError(f"isoflop: {why}")
    prof = rows.profiles
    s = allocation_exponents(b.C, prof.N_opt[1:], prof.D_opt[1:], prof.used[1:])
    ok = np.isfinite(s).all(axis=1)
    est = {"a": fit.a, "b": fit.b, "tokens_per_param": fit.tokens_per_param}
    ci = summarise(s[:, [0, 1, 4]], ok, ("a", "b", "tokens_per_param"), est, cfg.ci)
    budgets = tuple(
        replace(
            item,
            ci=summarise(
                np.column_stack([prof.N_opt[1:, g], prof.L_front[1:, g]]),
                np.isfinite(prof.N_opt[1:, g]) if item.used else np.isfinite(prof.L_front[1:, g]),
                ("N_opt", "L_opt"),
                {"N_opt": item.N_opt, "L_opt": item.L_front},
                cfg.ci,
            ),
        )
        for g, item in enumerate(fit.budgets)
    )
    return replace(fit, ci=ci, budgets=budgets)


def parametric_section(prep: Prepared, Y: np.ndarray, cfg: FitConfig) -> ParametricFit:
    """Approach 3 with intervals of its parameters and the allocation it implies at the top compute."""
    par, p = prep.parametric, prep.points
    if par is None:
        raise FitError(prep.skipped.get("parametric", "not fitted"))
    s, ok = refit_parametric(p.N, p.D, Y[1:], par)
    names = ("E", "A", "B", "alpha", "beta", "a", "b", "G", "N_opt", "D_opt", "tokens_per_param")
    co = par.compute_optimal(float(p.C.max()))
    sf = par.surface
    est = {"E": sf.E, "A": sf.A, "B": sf.B, "alpha": sf.alpha, "beta": sf.beta, **co}
    return replace(par, ci=summarise(_with_allocation(s, par.k, p.C.max()), ok, names, est, cfg.ci))


def _with_allocation(s: np.ndarray, k: float, C: float) -> np.ndarray:
    """Append a, b, G, N_opt(C), D_opt(C), D_opt/N_opt to (E, A, B, alpha, beta) samples."""
    E, A, B, alpha, beta = s.T
    with np.errstate(all="ignore"):
        a, b = beta / (alpha + beta), alpha / (alpha + beta)
        G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
        N_opt, D_opt = G * (C / k) ** a, (C / k) ** b / G
    return np.column_stack([s, a, b, G, N_opt, D_opt, D_opt / N_opt])


def holdout_section(prep: Prepared, rows: Rows, cfg: FitConfig) -> Holdout:
    """Row 0's predictions of every law with intervals of their errors, and the parametric law's."""
    split, p, fp = prep.design.split, prep.points, rows.frontier
    if split is None:
        raise FitError(prep.skipped.get("holdout", "no hold-out"))
    T0 = rows.targets[0] > 0
    train = ~split.held if fp.by_budget else envelope_mask(fp.x, fp.Y[:1], ~split.held)[0]
    n_train = int(train.sum())
    laws, failed = {}, {}
    for name, pr in rows.holdout.items():
        if not pr.ok[0]:
            failed[name] = (
                f"could not be fitted: {n_train} frontier points remain and it needs {MIN_TRAIN[name]} "
                "(one more than its parameters)"
            )
            continue
        est = {"rel_error": float(pr.rel_error[0]), "max_rel_error": float(pr.max_rel_error[0])}
        ci = summarise(
            np.column_stack([pr.rel_error[1:], pr.max_rel_error[1:]]), pr.ok[1:], tuple(est), est, cfg.ci
        )
        E, C0, alpha = (float(v) for v in pr.params[0])
        laws[name] = LawPrediction(
            name, LAWS[name], E, C0, alpha, pr.pred[0, T0], est["rel_error"], est["max_rel_error"],
            float(pr.max_z[0]), ci,
        )  # fmt: skip
    held_points = split.held[prep.budgets.ids] if fp.by_budget else split.held
    held_runs = tuple(rid for j in np.flatnonzero(held_points) for rid in p.run_ids[j])
    par_err = par_max = None
    note = ""
    try:
        train = ~held_points
        par = fit_parametric(
            p.N[train], p.D[train], p.L[train], k=prep.parametric.k if prep.parametric else 6.0
        )
        err = (
            np.abs(par.surface.loss(p.N[held_points], p.D[held_points]) - p.L[held_points]) / p.L[held_points]
        )
        par_err, par_max = float(err.mean()), float(err.max())
    except FitError as exc:
        note = str(exc)
    return Holdout(
        rule=split.rule,
        held_runs=held_runs,
        target_C=fp.x[T0],
        target_L=fp.Y[0, T0],
        target_source=tuple(fp.source[T0]),
        decides=prep.design.rules.holdout_law,
        laws=laws,
        failed=failed,
        parametric_rel_error=par_err,
        parametric_max_rel_error=par_max,
        parametric_note=note,
    )


def calibration_section(prep: Prepared, rng: np.random.Generator, cfg: FitConfig) -> Calibration:
    """The verdict's error rates on `cfg.calibration_draws` simulated sweeps per truth of this design."""
    par, p = prep.parametric, prep.points
    if cfg.calibration_draws <= 0:
        raise FitError("fit.calibration_draws is 0")
    if par is None:
        raise FitError("no parametric fit to anchor the simulated laws to")
    no_floor = fit_surface_with_floor(p.N, p.D, p.L, par, 0.0)
    floor = fit_surface_with_floor(p.N, p.D, p.L, par, FLOOR_SHARE * float(p.L.min()))
    design = replace(prep.design, floor=None)  # a simulated source has no known floor
    return calibrate(
        design, prep.noise, make_truths(p.N, p.D, p.C, no_floor, floor), cfg.calibration_draws, rng
    )


def ground_truth(bayes: float, frontier: LawFit | None, par: ParametricFit | None) -> GroundTruth:
    def inside(fit, key):
        ci = None if fit is None else fit.ci.get(key)
        if ci is None or not all(np.isfinite(ci)) or not fit.ci.reliable.get(key, False):
            return ci, None
        return ci, bool(ci[0] <= bayes <= ci[1])

    E_ci, contains = inside(frontier, "E")
    pE_ci, p_contains = inside(par, "E")
    return GroundTruth(
        bayes_loss=bayes,
        E=None if frontier is None else frontier.law.E,
        E_ci=E_ci,
        contains=contains,
        parametric_E=None if par is None else par.surface.E,
        parametric_E_ci=pE_ci,
        parametric_contains=p_contains,
    )
