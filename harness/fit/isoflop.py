"""Chinchilla approach 2: IsoFLOP profiles.

For each compute budget with at least 3 distinct sizes, L is fitted by a parabola in log N; its
vertex is the compute-optimal size N_opt at that budget. D_opt is read off the budget's own runs by
a straight line of log D on log N, evaluated at N_opt: exact whenever the runs of a budget satisfy
C = k N D for any constant k, so no FLOP convention's k (6, or 6 plus attention) is assumed.
Then N_opt ~ C^a and D_opt ~ C^b are straight lines in log-log.

A budget whose parabola opens downward, or whose vertex lies outside its sampled sizes, yields no
N_opt (an extrapolated vertex is not a measurement) and is listed as unused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.fit.frontier import _distinct
from harness.fit.laws import FitError, check_points


@dataclass(frozen=True)
class IsoflopBudget:
    """The IsoFLOP profile of one compute budget."""

    label: str
    C: float  # geometric mean compute of its runs, FLOPs
    index: np.ndarray  # its runs
    n_sizes: int  # distinct N among them
    center: float  # mean log N of its runs; the parabola is in u = log N - center
    coeffs: tuple[float, float, float]  # L = c2 u^2 + c1 u + c0 (nats/token)
    D_line: tuple[float, float]  # log D = d0 + d1 u
    N_opt: float  # vertex (nan without a minimum)
    D_opt: float
    L_opt: float
    used: bool
    note: str  # why it is unused ('' when used)


@dataclass(frozen=True)
class IsoflopFit:
    """N_opt = exp(a_intercept) C^a, D_opt = exp(b_intercept) C^b over the budgets used."""

    a: float
    b: float
    a_intercept: float
    b_intercept: float
    tokens_per_param: float  # geometric mean of D_opt / N_opt over the budgets used
    budgets: tuple[IsoflopBudget, ...]
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def N_opt(self, C: np.ndarray | float) -> np.ndarray:
        return np.exp(self.a_intercept + self.a * np.log(np.asarray(C, dtype=float)))

    def D_opt(self, C: np.ndarray | float) -> np.ndarray:
        return np.exp(self.b_intercept + self.b * np.log(np.asarray(C, dtype=float)))


def _profile(
    label: str, C: float, index: np.ndarray, N: np.ndarray, D: np.ndarray, L: np.ndarray
) -> IsoflopBudget:
    logN = np.log(N)
    center = float(logN.mean())
    u = logN - center
    c2, c1, c0 = (float(c) for c in np.polyfit(u, L, 2))
    d1, d0 = (float(c) for c in np.polyfit(u, np.log(D), 1))
    n_sizes = int(np.unique(N).size)
    optimum, note = (float("nan"),) * 3, "the loss has no minimum over N (parabola curvature <= 0)"
    if c2 > 0:
        v = -c1 / (2 * c2)
        optimum = (float(np.exp(center + v)), float(np.exp(d0 + d1 * v)), c0 - c1 * c1 / (4 * c2))
        note = ""
        if not u.min() <= v <= u.max():
            tried = f"({N.min():.3g} to {N.max():.3g})"
            note = f"the minimum N = {optimum[0]:.3g} lies outside the sizes tried {tried}"
    return IsoflopBudget(label, C, index, n_sizes, center, (c2, c1, c0), (d0, d1), *optimum, not note, note)


def fit_isoflop(
    N: np.ndarray,
    D: np.ndarray,
    C: np.ndarray,
    L: np.ndarray,
    *,
    groups: np.ndarray,
    labels: tuple[str, ...] | None = None,
) -> IsoflopFit:
    """Approach 2 over the IsoFLOP groups `groups` (n,) (one int per run; labels name them).

    Raises FitError unless at least 2 budgets have a minimum inside their sizes.
    """
    N, D, C, L = (np.asarray(v, dtype=float) for v in (N, D, C, L))
    check_points("isoflop", 0, N=N, D=D, C=C, L=L)
    groups = np.asarray(groups)
    profiles = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        if np.unique(N[idx]).size < 3:
            continue
        label = labels[g] if labels is not None else str(g)
        profiles.append(_profile(label, float(np.exp(np.log(C[idx]).mean())), idx, N[idx], D[idx], L[idx]))
    profiles.sort(key=lambda p: p.C)
    used = [p for p in profiles if p.used]
    if len(used) < 2:
        why = "; ".join(f"{p.label}: {p.note}" for p in profiles if not p.used)
        raise FitError(
            f"isoflop: {len(profiles)} budgets have >= 3 sizes and {len(used)} of them a minimum inside "
            f"their sizes; a and b need 2" + (f" ({why})" if why else "")
        )
    lc = np.log([p.C for p in used])
    a, a0 = np.polyfit(lc, np.log([p.N_opt for p in used]), 1)
    b, b0 = np.polyfit(lc, np.log([p.D_opt for p in used]), 1)
    tpp = float(np.exp(np.mean([np.log(p.D_opt / p.N_opt) for p in used])))
    return IsoflopFit(float(a), float(b), float(a0), float(b0), tpp, tuple(profiles))


def _batched_lstsq(X: np.ndarray, y: np.ndarray, W: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Weighted least squares of y (n,) on X (n, p) for each row of W (B, n); rows not ok get nan."""
    XtW = X.T[None, :, :] * W[:, None, :]
    A = XtW @ X
    A[~ok] = np.eye(X.shape[1])
    coef = np.linalg.solve(A, (XtW @ y)[..., None])[..., 0]
    coef[~ok] = np.nan
    return coef


def refit_isoflop(
    N: np.ndarray, D: np.ndarray, L: np.ndarray, fit: IsoflopFit, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Redo approach 2 for each row of run weights counts (B, n) at once.

    Every budget of `fit` is refitted (also those unused on the full data) and used when its
    resampled runs hold >= 3 sizes and a minimum inside them. Returns (B, 3) samples of
    (a, b, tokens_per_param) and (B,) ok: at least 2 budgets used.
    """
    N, D, L = (np.asarray(v, dtype=float) for v in (N, D, L))
    B = counts.shape[0]
    logN_opt = np.full((B, len(fit.budgets)), np.nan)
    logD_opt = np.full_like(logN_opt, np.nan)
    for j, p in enumerate(fit.budgets):
        W = counts[:, p.index].astype(float)
        u = np.log(N[p.index]) - p.center
        ok = _distinct(u, W) >= 3
        c = _batched_lstsq(np.column_stack([u * u, u, np.ones_like(u)]), L[p.index], W, ok)
        d = _batched_lstsq(np.column_stack([u, np.ones_like(u)]), np.log(D[p.index]), W, ok)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = -c[:, 1] / (2 * c[:, 0])
        lo = np.where(W > 0, u, np.inf).min(axis=1)
        hi = np.where(W > 0, u, -np.inf).max(axis=1)
        good = ok & (c[:, 0] > 0) & (v >= lo) & (v <= hi)
        logN_opt[good, j] = p.center + v[good]
        logD_opt[good, j] = d[good, 1] + d[good, 0] * v[good]
    valid = np.isfinite(logN_opt)
    lc = np.log([p.C for p in fit.budgets])
    w = valid.astype(float)
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w * lc).sum(axis=1) / n
        dx = np.where(valid, lc - mx[:, None], 0.0)
        sxx = (dx * dx).sum(axis=1)
        a = (dx * np.nan_to_num(logN_opt)).sum(axis=1) / sxx
        b = (dx * np.nan_to_num(logD_opt)).sum(axis=1) / sxx
        tpp = np.exp(np.nansum(logD_opt - logN_opt, axis=1) / n)
    out = np.column_stack([a, b, tpp])
    return out, (n >= 2) & np.isfinite(out).all(axis=1)
