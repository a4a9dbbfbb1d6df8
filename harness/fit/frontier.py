"""The compute frontier and one-variable power laws: Chinchilla approach 1, Kaplan L(C), L(N), L(D).

The frontier's points: with IsoFLOP budgets, one per budget, its fitted minimum (the near-minimum
parabola of `harness.fit.isoflop`; its best run where the minimum is not bracketed), so that the
frontier does not hang on which single run happened to be best. Without compute budgets, the lower
envelope of the points: those whose loss beats every point with less compute.

Every law is fitted by least squares on log L (each point weighs by its relative error, so the
small losses of large runs count as much as the large losses of small ones). All fits here take B
rows of losses at once (Y (B, n), weights W (B, n): 0 leaves a point out): the fit is one row, the
bootstrap and the calibration are many, and all are solved together by `harness.fit.solve`.
The offset law starts from the same grid of 30 starts in every row, so no refit inherits a fit
stuck at a bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.fit.budgets import Budgets
from harness.fit.intervals import Intervals
from harness.fit.isoflop import Profiles
from harness.fit.laws import FitError, PowerLaw, check_points, distinct_per_row, max_rel_residual, r2_log
from harness.fit.solve import offset_power_law_model, solve_batched

ALPHA_MAX = 10.0
E_FRACTIONS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)  # starting E as shares of the smallest loss
ALPHA_STARTS = (0.05, 0.2, 0.5, 1.0)  # starting exponents besides the log-log slope's


@dataclass(frozen=True)
class LawFit:
    """A PowerLaw fitted by least squares on log L to the points (x, L) = (x_in[index], L_in[index])."""

    law: PowerLaw
    index: np.ndarray  # which input points were fitted
    x: np.ndarray
    L: np.ndarray
    r2: float  # of log L
    max_rel_residual: float
    converged: bool
    ci: Intervals = field(default_factory=Intervals)

    def predict(self, x: np.ndarray | float) -> np.ndarray:
        return self.law(x)


def _law_fit(x, L, params, index, converged) -> LawFit:
    law = PowerLaw(*(float(v) for v in params))
    L_hat = law(x)
    return LawFit(law, np.asarray(index), x, L, r2_log(L, L_hat), max_rel_residual(L, L_hat), bool(converged))


def offset_power_law_batch(
    x: np.ndarray, Y: np.ndarray, W: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fit L = E + (x0/x)^alpha, E >= 0, to each row of Y (B, n) with weights W (B, n).

    From 30 starts per row: E at 0-99% of the row's smallest loss, and for each E the weighted
    log-log slope of L - E plus four fixed exponents. Returns (B, 3) rows (E, x0, alpha) and (B,) ok:
    converged, finite, and at least 4 distinct x weighed.
    """
    x = np.asarray(x, dtype=float)
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    W = np.ones_like(Y) if W is None else np.broadcast_to(np.asarray(W, dtype=float), Y.shape)
    if Y.shape[0] == 0:
        return np.zeros((0, 3)), np.zeros(0, dtype=bool)
    used = np.flatnonzero(np.any(W > 0, axis=0))  # points no row weighs cost solver time only
    x, Y, W = x[used], Y[:, used], W[:, used]
    B, n = Y.shape
    center = float(np.log(x).mean())
    z = np.log(x) - center
    on = W > 0
    lmin = np.where(on, Y, np.inf).min(axis=1)
    E = np.asarray(E_FRACTIONS)[None, :] * lmin[:, None]  # (B, f)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.log(np.where(on[:, None, :], Y[:, None, :] - E[:, :, None], 1.0))  # (B, f, n)
        sw = W.sum(axis=1)[:, None]
        zm = (W * z).sum(axis=1)[:, None] / sw
        wm = (W[:, None, :] * w).sum(axis=2) / sw
        dz = (z[None, :] - zm)[:, None, :]
        slope = (W[:, None, :] * dz * (w - wm[..., None])).sum(axis=2) / (W[:, None, :] * dz * dz).sum(axis=2)
    alphas = np.concatenate(
        [np.clip(np.nan_to_num(-slope, nan=0.2), 0.02, ALPHA_MAX)[..., None],
         np.broadcast_to(ALPHA_STARTS, slope.shape + (len(ALPHA_STARTS),))],
        axis=2,
    )  # fmt: skip
    intercept = np.nan_to_num(wm + slope * zm, nan=0.0)  # log(L - E) at z = 0
    starts = np.stack(np.broadcast_arrays(E[..., None], intercept[..., None], alphas), axis=-1).reshape(
        B, -1, 3
    )
    s = starts.shape[1]
    lower, upper = np.array([0.0, -np.inf, 1e-6]), np.array([np.inf, np.inf, ALPHA_MAX])
    with np.errstate(invalid="ignore", divide="ignore"):  # a drawn point <= 0 (a wild parabola's vertex)
        logY = np.log(Y)  # is nan: its row's fit fails below, as it should
    sol = solve_batched(
        offset_power_law_model(z),
        starts.reshape(-1, 3),
        np.repeat(logY, s, axis=0),
        np.repeat(W, s, axis=0),
        lower=lower,
        upper=upper,
    )
    obj = np.where(np.isfinite(sol.objective), sol.objective, np.inf).reshape(B, s)
    best = np.argmin(obj, axis=1)
    theta = sol.theta.reshape(B, s, 3)[np.arange(B), best]
    conv = sol.converged.reshape(B, s)[np.arange(B), best]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        x0 = np.exp(center + theta[:, 1] / theta[:, 2])
    out = np.column_stack([theta[:, 0], x0, theta[:, 2]])
    ok = conv & np.isfinite(out).all(axis=1) & np.isfinite(obj[np.arange(B), best])
    return out, ok & (distinct_per_row(x, W) >= 4)


def power_law_batch(
    x: np.ndarray, Y: np.ndarray, W: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The pure power law L = (x0/x)^alpha (E = 0), a weighted log-log line per row: (B, 3) rows
    (0, x0, alpha) and (B,) ok (at least 3 distinct x, one more than the parameters)."""
    lx = np.log(np.asarray(x, dtype=float))
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    W = np.ones_like(Y) if W is None else np.broadcast_to(np.asarray(W, dtype=float), Y.shape)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ly = np.log(np.where(W > 0, Y, 1.0))
        s = W.sum(axis=1)
        mx, my = (W @ lx) / s, (W * ly).sum(axis=1) / s
        sxx = (W * (lx - mx[:, None]) ** 2).sum(axis=1)
        sxy = (W * (lx - mx[:, None]) * (ly - my[:, None])).sum(axis=1)
        alpha = -sxy / sxx
        x0 = np.exp(mx + my / alpha)
    out = np.column_stack([np.zeros_like(alpha), x0, alpha])
    return out, np.isfinite(out).all(axis=1) & (distinct_per_row(lx, W) >= 3)


def floor_power_law_batch(
    x: np.ndarray, Y: np.ndarray, W: np.ndarray | None, E: float
) -> tuple[np.ndarray, np.ndarray]:
    """L = E + (x0/x)^alpha with E known (a source's Bayes loss): a log-log line of L - E per row.
    Rows whose weighed losses do not all exceed E are not ok."""
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    W = np.ones_like(Y) if W is None else np.broadcast_to(np.asarray(W, dtype=float), Y.shape)
    above = np.all((Y > E) | (W == 0), axis=1)
    out, ok = power_law_batch(x, np.where(W > 0, np.maximum(Y - E, 1e-300), 1.0), W)
    out[:, 0] = E
    return out, ok & above


def fit_offset_power_law(
    x: np.ndarray, L: np.ndarray, *, name: str = "L(x)", xname: str = "x", index: np.ndarray | None = None
) -> LawFit:
    """Fit L = E + (x0/x)^alpha, E >= 0 (`offset_power_law_batch` on one row); FitError with fewer
    than 4 distinct x."""
    x, L = np.asarray(x, dtype=float), np.asarray(L, dtype=float)
    check_points(name, 3, **{xname: x, "L": L})
    if np.unique(x).size < 4:
        raise FitError(
            f"{name}: only {np.unique(x).size} distinct values of {xname}; E, {xname}0, alpha need 4"
        )
    params, ok = offset_power_law_batch(x, L[None, :])
    if not np.isfinite(params[0]).all():
        raise FitError(f"{name}: no start gave a finite fit")
    return _law_fit(x, L, params[0], np.arange(x.size) if index is None else index, ok[0])


def fit_power_law(
    x: np.ndarray, L: np.ndarray, *, name: str = "L(x)", xname: str = "x", index: np.ndarray | None = None
) -> LawFit:
    """Fit the pure power law L = (x0/x)^alpha (E = 0): a straight line in log-log."""
    x, L = np.asarray(x, dtype=float), np.asarray(L, dtype=float)
    check_points(name, 2, **{xname: x, "L": L})
    if np.unique(x).size < 2:
        raise FitError(f"{name}: all points have the same {xname}")
    params, _ = power_law_batch(x, L[None, :])
    return _law_fit(x, L, params[0], np.arange(x.size) if index is None else index, True)


def envelope_mask(C: np.ndarray, Y: np.ndarray, include: np.ndarray | None = None) -> np.ndarray:
    """(B, n) bool: the points on the lower envelope of (C, Y[b]) among those row b includes: each
    beats every included point with less compute (at equal compute, the lower loss; a tie, the
    first point in canonical order)."""
    C = np.asarray(C, dtype=float)
    Y = np.atleast_2d(Y)
    inc = (
        np.ones(Y.shape, dtype=bool) if include is None else np.broadcast_to(np.asarray(include) > 0, Y.shape)
    )
    Lm = np.where(inc, Y, np.inf)
    order = np.argsort(C, kind="stable")
    Ls = Lm[:, order]
    key = np.lexsort((Ls, np.broadcast_to(C[order], Ls.shape)), axis=1)  # by C, then by loss
    Ls_sorted = np.take_along_axis(Ls, key, axis=1)
    before = np.minimum.accumulate(
        np.concatenate([np.full((Y.shape[0], 1), np.inf), Ls_sorted[:, :-1]], 1), 1
    )
    member = np.zeros(Y.shape, dtype=bool)
    rows = np.arange(Y.shape[0])[:, None]
    member[rows, order[key]] = Ls_sorted < before
    return member


@dataclass(frozen=True)
class FrontierPoints:
    """The frontier's points for B rows of losses: x (q,) compute, Y (B, q) loss, W (B, q) 1 where a
    point is on row b's frontier; sigma (B, q) relative noise of each; by_budget: one point per
    IsoFLOP budget (else one per envelope point); source (q,) 'fitted minimum' | 'best run'
    (row 0)."""

    x: np.ndarray
    Y: np.ndarray
    W: np.ndarray
    sigma: np.ndarray
    by_budget: bool
    source: np.ndarray


def frontier_points(
    C: np.ndarray, Y: np.ndarray, sigma: np.ndarray, budgets: Budgets, profiles: Profiles | None
) -> FrontierPoints:
    """One point per IsoFLOP budget (its profile's frontier value), else the envelope of the points.

    C, sigma (m,), Y (B, m): the points' compute, relative noise and losses.
    """
    Y = np.atleast_2d(Y)
    if budgets.isoflop and profiles is not None:
        fitted = np.isfinite(profiles.L_opt[0])
        return FrontierPoints(
            x=budgets.C,
            Y=profiles.L_front,
            W=np.ones_like(profiles.L_front),
            sigma=profiles.sigma_front,
            by_budget=True,
            source=np.where(fitted, "fitted minimum", "best run"),
        )
    return FrontierPoints(
        x=np.asarray(C, dtype=float),
        Y=Y,
        W=envelope_mask(C, Y).astype(float),
        sigma=np.broadcast_to(np.asarray(sigma, dtype=float), Y.shape),
        by_budget=False,
        source=np.full(Y.shape[1], "run"),
    )


def fit_frontier(fp: FrontierPoints) -> LawFit:
    """Chinchilla approach 1 / Kaplan L(C): L = E + (C0/C)^alpha through row 0's frontier points."""
    idx = np.flatnonzero(fp.W[0] > 0)
    idx = idx[np.argsort(fp.x[idx], kind="stable")]
    if idx.size < 4:
        what = "budgets" if fp.by_budget else "points on the compute frontier (beat every cheaper point)"
        raise FitError(
            f"frontier: only {idx.size} {what}; L(C) = E + (C0/C)^alpha has 3 parameters and needs at least 4"
        )
    return fit_offset_power_law(fp.x[idx], fp.Y[0, idx], name="frontier", xname="C", index=idx)


def kaplan_points(N: np.ndarray, D: np.ndarray, *, vary: str) -> tuple[np.ndarray, str]:
    """Kaplan's L(N) at the largest token budget (vary='N': the points with D within 10% of the
    largest) or L(D) at the largest model (vary='D'): (their indices, the law's name)."""
    if vary == "N":
        return np.flatnonzero(D.max() / 1.1 <= D), f"L(N) at D = {D.max():.3g} tokens"
    if vary == "D":
        return np.flatnonzero(N.max() * (1 - 1e-9) <= N), f"L(D) at N = {N.max():.3g} params"
    raise ValueError(f"vary: 'N' or 'D', got {vary!r}")


def fit_kaplan(N: np.ndarray, D: np.ndarray, L: np.ndarray, *, vary: str = "N") -> LawFit:
    """Kaplan's L(N) or L(D) (see `kaplan_points`) as E + (x0/x)^alpha."""
    N, D, L = (np.asarray(v, dtype=float) for v in (N, D, L))
    check_points(f"L({vary})", 0, N=N, D=D, L=L)
    idx, name = kaplan_points(N, D, vary=vary)
    x = N[idx] if vary == "N" else D[idx]
    return fit_offset_power_law(x, L[idx], name=name, xname=vary, index=idx)
