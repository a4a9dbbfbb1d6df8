"""Chinchilla approach 2: IsoFLOP profiles, fitted on the near-minimum window of each budget.

The window rule (fit.isoflop_window = w, 2 by default): a budget's window is the sizes within a factor w
of its best run (|log N - log N_best| <= log w). A parabola of L in log N through the window is the
profile; its vertex is the budget's optimum N_opt, its value there L_opt. The parabola is a Taylor
expansion around the minimum, so it is only fitted where that holds: fitted through every size of a
budget (1-3 decades on Porian et al.'s data) it biased a by up to +0.07, because the loss rises faster
on one side of the optimum than on the other; through the sizes within a factor 2 of the best run it
lands inside the authors' 95% interval for all five of their configurations (tests/test_porian.py). A
window with fewer than 3 sizes is widened to the best run and its nearest size on each side ('wide'):
its L_opt still serves the frontier (the value at a vertex is first-order insensitive to where the
vertex is) but its N_opt does not enter a and b. A budget whose best run is its smallest or largest size
has no bracketed minimum ('edge'), and one of fewer than 3 distinct sizes carries no parabola ('few
sizes'); then the best run is its frontier point. Windows count distinct sizes, not points: data whose
tokens are real numbers (D = C / 6N, as published reconstructions give) can hold one size at two nearby
token counts within one budget. D_opt is read off the window's runs by a straight line of log D on log N
at N_opt: exact when C = k N D for any constant k, so no FLOP convention's k is assumed. N_opt ~ C^a and
D_opt ~ C^b are straight lines in log-log over the budgets whose minimum lies inside a narrow window.

Everything is computed for B draws of the losses at once (rows of Y): the fit is row 0 of the
observed losses, the bootstrap and the calibration are other rows, and each row chooses its own
windows by the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.fit.budgets import Budgets

NARROW, WIDE, EDGE, NO_MINIMUM, FEW_SIZES = 0, 1, 2, 3, 4
WINDOW_SLACK = 0.01  # in log N: a size 2.01x from the best is 'within a factor 2' (rounded parameter counts)
STATUS = {NARROW: "", WIDE: "wide", EDGE: "edge", NO_MINIMUM: "no minimum", FEW_SIZES: "few sizes"}


@dataclass(frozen=True)
class Profiles:
    """Every budget's profile for B draws: arrays (B, k) over the k budgets (nan where not defined)."""

    N_opt: np.ndarray
    D_opt: np.ndarray
    L_opt: np.ndarray  # the vertex value where the minimum is bracketed
    L_front: np.ndarray  # the budget's frontier point: L_opt, or its best run's loss
    sigma_front: np.ndarray  # its relative noise: L_opt's by the delta method, or the best run's
    status: np.ndarray  # NARROW | WIDE | EDGE | NO_MINIMUM | FEW_SIZES
    window: list[np.ndarray]  # per budget, (B, n_b) bool: which of its points the parabola went through
    coeffs: list[np.ndarray]  # per budget, (B, 3): L = c2 u^2 + c1 u + c0, u = log N - center
    center: np.ndarray  # (k,) mean log N of each budget's points

    @property
    def used(self) -> np.ndarray:
        """(B, k) budgets whose N_opt enters a and b: a minimum inside a narrow window."""
        return self.status == NARROW


def _batched_lstsq(X: np.ndarray, y: np.ndarray, W: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Weighted least squares of y (n,) or (B, n) on X (n, p) for each row of W (B, n); rows not ok: nan."""
    XtW = X.T[None, :, :] * W[:, None, :]
    A = XtW @ X
    A[~ok] = np.eye(X.shape[1])
    rhs = XtW @ y[..., None] if y.ndim == 2 else (XtW @ y)[..., None]
    coef = np.linalg.solve(A, rhs)[..., 0]
    coef[~ok] = np.nan
    return coef


def profile_budgets(
    N: np.ndarray,
    D: np.ndarray,
    Y: np.ndarray,
    k: np.ndarray,
    sigma: np.ndarray,
    budgets: Budgets,
    *,
    window: float,
) -> Profiles:
    """The near-minimum profile of every budget for each row of losses Y (B, m) (module docstring).

    N, D, k, sigma (m,): the points' sizes, tokens, replicate counts (a parabola weighs a point by
    k) and relative noise. L_opt's noise is sigma_run sqrt(g (X'WX)^-1 g'), g = (v^2, v, 1) at the
    vertex v (the first-order delta method; the vertex's own shift does not move L_opt to first order).
    """
    Y = np.atleast_2d(Y)
    B, nb = Y.shape[0], len(budgets.labels)
    out = {key: np.full((B, nb), np.nan) for key in ("N_opt", "D_opt", "L_opt", "L_front", "sigma_front")}
    sigma_run = sigma * np.sqrt(k)
    status = np.full((B, nb), NO_MINIMUM)
    windows, coeffs, centers = [], [], np.zeros(nb)
    rows = np.arange(B)
    for g in range(nb):
        idx = budgets.members(g)
        idx = idx[np.argsort(N[idx], kind="stable")]
        u = np.log(N[idx])
        centers[g] = u.mean()
        uc, y = u - centers[g], Y[:, idx]
        first = np.r_[True, np.diff(u) > 0]  # the first point of each size (a size may recur at other D)
        size = np.cumsum(first) - 1  # each point's size, numbered from the smallest
        n_sizes = size[-1] + 1
        best = np.argmin(y, axis=1)
        out["L_front"][:, g] = y[rows, best]
        out["sigma_front"][:, g] = sigma[idx][best]
        near = np.abs(uc[None, :] - uc[best][:, None]) <= np.log(window) + WINDOW_SLACK
        narrow = (near & first).sum(axis=1) >= 3  # a window holds every point of each size in it
        bracket = np.abs(size[None, :] - size[best][:, None]) <= 1
        mask = np.where(narrow[:, None], near, bracket)
        edge = (size[best] == 0) | (size[best] == n_sizes - 1)
        ok = ~edge
        W = mask * k[idx][None, :]
        c2, c1, c0 = _batched_lstsq(np.column_stack([uc * uc, uc, np.ones_like(uc)]), y, W, ok).T
        d1, d0 = _batched_lstsq(np.column_stack([uc, np.ones_like(uc)]), np.log(D[idx]), W, ok).T
        with np.errstate(invalid="ignore", divide="ignore"):
            v = -c1 / (2 * c2)
        lo = np.where(mask, uc, np.inf).min(axis=1)
        hi = np.where(mask, uc, -np.inf).max(axis=1)
        good = ok & (c2 > 0) & (v >= lo) & (v <= hi)
        missed = np.where(n_sizes < 3, FEW_SIZES, np.where(edge, EDGE, NO_MINIMUM))
        status[:, g] = np.where(good, np.where(narrow, NARROW, WIDE), missed)
        out["N_opt"][good, g] = np.exp(centers[g] + v[good])
        out["D_opt"][good, g] = np.exp(d0[good] + d1[good] * v[good])
        out["L_opt"][good, g] = c0[good] - c1[good] ** 2 / (4 * c2[good])
        out["L_front"][good, g] = out["L_opt"][good, g]
        X = np.stack([v * v, v, np.ones_like(v)], axis=1)[good]
        XtWX = np.einsum(
            "ni,bn,nj->bij",
            np.column_stack([uc * uc, uc, np.ones_like(uc)]),
            W[good],
            np.column_stack([uc * uc, uc, np.ones_like(uc)]),
        )
        q = np.einsum("bi,bij,bj->b", X, np.linalg.inv(XtWX), X)
        s_run = (mask[good] * sigma_run[idx][None, :]).sum(axis=1) / mask[good].sum(axis=1)
        out["sigma_front"][good, g] = s_run * np.sqrt(np.maximum(q, 0.0))
        windows.append(mask)
        coeffs.append(np.column_stack([c2, c1, c0]))
    return Profiles(**out, status=status, window=windows, coeffs=coeffs, center=centers)


def allocation_exponents(C: np.ndarray, N_opt: np.ndarray, D_opt: np.ndarray, used: np.ndarray) -> np.ndarray:
    """(B, 5) a, b, log-intercepts of N_opt and D_opt, tokens per parameter, by least squares in
    log-log over each row's used budgets (C (k,), the rest (B, k)); nan where fewer than 2 are used."""
    lc = np.log(C)
    w = used.astype(float)
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w * lc).sum(axis=1) / n
        dx = np.where(used, lc - mx[:, None], 0.0)
        sxx = (dx * dx).sum(axis=1)
        out = []
        for opt in (N_opt, D_opt):
            y = np.where(used, np.log(opt), 0.0)
            my = (w * y).sum(axis=1) / n
            slope = (dx * y).sum(axis=1) / sxx
            out += [slope, my - slope * mx]
        tpp = np.exp((w * np.where(used, np.log(D_opt / N_opt), 0.0)).sum(axis=1) / n)
    res = np.column_stack([out[0], out[2], out[1], out[3], tpp])
    res[n < 2] = np.nan
    return res


@dataclass(frozen=True)
class IsoflopBudget:
    """The IsoFLOP profile of one compute budget (row 0: the observed losses)."""

    label: str
    C: float  # geometric mean compute of its points, FLOPs
    index: np.ndarray  # its points
    window: np.ndarray  # the points its parabola went through
    n_sizes: int  # distinct N among its points
    center: float  # mean log N of its points; the parabola is in u = log N - center
    coeffs: tuple[float, float, float]  # L = c2 u^2 + c1 u + c0 (nats/token)
    N_opt: float  # vertex (nan without a bracketed minimum)
    D_opt: float
    L_opt: float
    L_front: float  # its frontier point: L_opt, or its best run's loss
    status: str  # '' (narrow window) | 'wide' | 'edge' | 'no minimum'
    used: bool  # N_opt enters a and b
    note: str  # why it is not used ('' when used)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # N_opt, L_opt


@dataclass(frozen=True)
class IsoflopFit:
    """N_opt = exp(a_intercept) C^a, D_opt = exp(b_intercept) C^b over the budgets used."""

    a: float
    b: float
    a_intercept: float
    b_intercept: float
    tokens_per_param: float  # geometric mean of D_opt / N_opt over the budgets used
    window: float  # the window factor w
    budgets: tuple[IsoflopBudget, ...]
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def N_opt(self, C: np.ndarray | float) -> np.ndarray:
        return np.exp(self.a_intercept + self.a * np.log(np.asarray(C, dtype=float)))

    def D_opt(self, C: np.ndarray | float) -> np.ndarray:
        return np.exp(self.b_intercept + self.b * np.log(np.asarray(C, dtype=float)))


def _note(status: int, n_window: int, n_sizes: int, window: float) -> str:
    """Why a budget's N_opt does not enter a and b ('' when it does); n_window, n_sizes: distinct sizes in
    its window and among its points."""
    if status == NARROW:
        return ""
    if status == WIDE:
        return (
            f"fewer than 3 sizes within a factor {window:g} of its best run: the parabola through the best "
            f"run and its neighbours ({n_window} sizes) gives its frontier point, not an N_opt for a and b"
        )
    if status == FEW_SIZES:
        sizes = f"{n_sizes} distinct size{'s' * (n_sizes > 1)}"
        return f"{sizes}: a parabola needs 3, so its best run is its frontier point"
    if status == EDGE:
        return "its best run is its smallest or largest size: the minimum is not bracketed"
    return "the window's parabola has no minimum inside its sizes"


def fit_isoflop(
    N: np.ndarray,
    D: np.ndarray,
    L: np.ndarray,
    k: np.ndarray,
    sigma: np.ndarray,
    budgets: Budgets,
    *,
    window: float,
) -> tuple[IsoflopFit | None, Profiles, str]:
    """Approach 2 on the observed losses: (the fit or None, the profiles, why None).

    The profiles (row 0) always exist: they give the frontier its points. The fit needs 2 budgets
    with a minimum inside a narrow window.
    """
    prof = profile_budgets(N, D, L, k, sigma, budgets, window=window)
    items = []
    for g, label in enumerate(budgets.labels):
        idx = budgets.members(g)
        idx = idx[np.argsort(N[idx], kind="stable")]
        st = int(prof.status[0, g])
        items.append(
            IsoflopBudget(
                label=label,
                C=float(budgets.C[g]),
                index=idx,
                window=idx[prof.window[g][0]],
                n_sizes=int(np.unique(N[idx]).size),
                center=float(prof.center[g]),
                coeffs=tuple(float(c) for c in prof.coeffs[g][0]),
                N_opt=float(prof.N_opt[0, g]),
                D_opt=float(prof.D_opt[0, g]),
                L_opt=float(prof.L_opt[0, g]),
                L_front=float(prof.L_front[0, g]),
                status=STATUS[st],
                used=st == NARROW,
                note=_note(st, np.unique(N[idx][prof.window[g][0]]).size, np.unique(N[idx]).size, window),
            )
        )
    a, b, a0, b0, tpp = allocation_exponents(budgets.C, prof.N_opt, prof.D_opt, prof.used)[0]
    if not np.isfinite(a):
        why = "; ".join(f"{p.label}: {p.note}" for p in items if not p.used)
        n_used = sum(p.used for p in items)
        return None, prof, f"{n_used} budgets have a minimum inside a narrow window; a and b need 2 ({why})"
    fit = IsoflopFit(float(a), float(b), float(a0), float(b0), float(tpp), window, tuple(items))
    return fit, prof, ""
