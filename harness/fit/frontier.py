"""Budgets, the compute frontier and one-variable power laws: Chinchilla approach 1, Kaplan L(C), L(N), L(D).

The frontier is the lower envelope of (C, L): the runs whose loss beats every run with less compute.
When runs come in IsoFLOP budgets only the best run of each budget can be on it, so that several
runs of one budget (whose compute differs by rounding) do not stack up as frontier points.

Every law is fitted by least squares on log L (each point weighs by its relative error, so the
small losses of large runs count as much as the large losses of small ones), from a grid of
starting points, by the batched solver of `harness.fit.solve`. The `refit_*` functions redo a fit
for many weightings of the same points at once, warm-started at the full-data optimum: the
bootstrap's inner loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.fit.laws import FitError, PowerLaw, aicc_log, check_points, max_rel_residual, r2_log
from harness.fit.solve import offset_power_law_model, solve_batched

ISOFLOP_SPREAD = 1.25  # a budget label is an IsoFLOP group when its runs' compute agrees within 25%
CLUSTER_RTOL = 0.10  # unlabelled runs within 10% of a group's cheapest run share a compute budget
ALPHA_MAX = 10.0


@dataclass(frozen=True)
class Budgets:
    """The runs grouped into budgets, numbered by increasing compute."""

    ids: np.ndarray  # (n,) group of each run
    labels: tuple[str, ...]  # (k,) name of each group
    C: np.ndarray  # (k,) geometric mean compute of each group's runs, FLOPs
    isoflop: bool  # each group shares one compute budget (IsoFLOP design), not e.g. one token budget
    rule: str  # how the groups were formed, as a sentence


def group_budgets(C: np.ndarray, budget: np.ndarray | None = None) -> Budgets:
    """Group runs into budgets.

    With labels: one group per label; the groups are IsoFLOP groups when every label's runs agree
    on compute within 25% (a grid's token budgets do not). Without labels: sorted by compute, a
    run joins the current group when its compute is within 10% of the group's cheapest run; if
    that yields groups of 2 or more runs on average the design is IsoFLOP, otherwise the runs are
    binned into 3-8 equal-width bins of log C (only the monotonicity check uses such bins).
    """
    C = np.asarray(C, dtype=float)
    n = C.size
    logC = np.log(C)
    if budget is not None:
        names, raw = np.unique(np.asarray(budget).astype(str), return_inverse=True)
        spread = [C[raw == g].max() / C[raw == g].min() for g in range(names.size)]
        isoflop = max(spread) <= ISOFLOP_SPREAD and names.size < n
        rule = f"grouped by the budget label ({names.size} budgets" + (
            ", each one compute budget)"
            if isoflop
            else f"; compute varies up to x{max(spread):.3g} within one)"
        )
    else:
        order = np.argsort(C)
        raw = np.empty(n, dtype=int)
        g, start = 0, C[order[0]]
        for i in order:
            if C[i] > start * (1 + CLUSTER_RTOL):
                g, start = g + 1, C[i]
            raw[i] = g
        if n / (g + 1) >= 2:
            isoflop = True
            rule = (
                f"no budget labels: runs within {CLUSTER_RTOL:.0%} of a group's cheapest run share a "
                f"compute budget ({g + 1} budgets)"
            )
        else:
            isoflop = False
            nb = int(min(8, max(3, round(np.sqrt(n)))))
            edges = np.linspace(logC.min(), logC.max(), nb + 1)
            raw = np.clip(np.searchsorted(edges, logC, side="right") - 1, 0, nb - 1)
            rule = f"no budget labels and no shared compute: runs binned into {nb} equal-width bins of log C"
        names = None
    present = np.unique(raw)
    mean_logC = np.array([logC[raw == g].mean() for g in present])
    order = np.argsort(mean_logC)
    remap = np.empty(raw.max() + 1, dtype=int)
    remap[present[order]] = np.arange(present.size)
    ids = remap[raw]
    Cg = np.exp(mean_logC[order])
    labels = tuple(
        str(names[present[j]]) if names is not None else f"C~{Cg[i]:.2e}" for i, j in enumerate(order)
    )
    return Budgets(ids=ids, labels=labels, C=Cg, isoflop=bool(isoflop), rule=rule)


@dataclass(frozen=True)
class Monotonicity:
    """Does the best loss improve with every larger budget?"""

    monotone: bool
    worst_rise: float  # max over budgets of best L / (best L of all cheaper budgets) - 1; < 0: all improve
    worst_label: str  # the budget where that happens ('' with fewer than 2 budgets)
    tolerance: float  # rises up to this fraction count as noise
    L_best: np.ndarray  # (k,) best loss of each budget


def check_monotone(L: np.ndarray, budgets: Budgets, *, tolerance: float = 0.0) -> Monotonicity:
    """Compare each budget's best loss with the best loss of every cheaper budget."""
    L = np.asarray(L, dtype=float)
    best = np.array([L[budgets.ids == g].min() for g in range(len(budgets.labels))])
    if best.size < 2:
        return Monotonicity(True, float("nan"), "", tolerance, best)
    rise = best[1:] / np.minimum.accumulate(best[:-1]) - 1
    j = int(np.argmax(rise))
    return Monotonicity(bool(rise[j] <= tolerance), float(rise[j]), budgets.labels[j + 1], tolerance, best)


def envelope_weights(
    C: np.ndarray, L: np.ndarray, include: np.ndarray, *, groups: np.ndarray | None = None
) -> np.ndarray:
    """(B, n) 0/1: which points are on the lower envelope of the points each row includes.

    include (B, n) or (n,): > 0 for the points present in that row (e.g. bootstrap counts).
    groups: with IsoFLOP budgets, only each budget's best present point competes.
    """
    include = np.atleast_2d(np.asarray(include)) > 0
    rows = np.arange(include.shape[0])
    Lm = np.where(include, L, np.inf)
    if groups is not None:
        keep = np.zeros(include.shape, dtype=bool)
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            best = idx[np.argmin(Lm[:, idx], axis=1)]
            keep[rows, best] = np.isfinite(Lm[rows, best])
        Lm = np.where(keep, Lm, np.inf)
    order = np.lexsort((L, C))  # by compute; at equal compute the lower loss first
    Ls = Lm[:, order]
    before = np.minimum.accumulate(
        np.concatenate([np.full((len(rows), 1), np.inf), Ls[:, :-1]], axis=1), axis=1
    )
    member = np.zeros(include.shape)
    member[:, order] = Ls < before
    return member


def frontier_envelope(C: np.ndarray, L: np.ndarray, *, groups: np.ndarray | None = None) -> np.ndarray:
    """Indices of the lower envelope of (C, L), by increasing C (see `envelope_weights`)."""
    C, L = np.asarray(C, dtype=float), np.asarray(L, dtype=float)
    idx = np.flatnonzero(envelope_weights(C, L, np.ones(C.size), groups=groups)[0])
    return idx[np.argsort(C[idx])]


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
    center: float  # mean log x of the fitted points: the solver's parameters are centred there
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def predict(self, x: np.ndarray | float) -> np.ndarray:
        return self.law(x)

    @property
    def theta(self) -> np.ndarray:
        """Solver parameters (E, k, alpha), k = alpha (log x0 - center): the warm start of refits."""
        law = self.law
        return np.array([law.E, law.alpha * (np.log(law.x0) - self.center), law.alpha])


def _distinct(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(B,) number of distinct values of x among the points each row of W weighs > 0."""
    _, code = np.unique(x, return_inverse=True)
    onehot = np.zeros((x.size, code.max() + 1))
    onehot[np.arange(x.size), code] = 1.0
    return ((W > 0).astype(float) @ onehot > 0).sum(axis=1)


def _law_fit(x, L, theta, center, index, converged) -> LawFit:
    E, k, alpha = (float(v) for v in theta)
    law = PowerLaw(E=E, x0=float(np.exp(center + k / alpha)), alpha=alpha)
    L_hat = law(x)
    return LawFit(
        law, np.asarray(index), x, L, r2_log(L, L_hat), max_rel_residual(L, L_hat), bool(converged), center
    )


def fit_offset_power_law(
    x: np.ndarray, L: np.ndarray, *, name: str = "L(x)", xname: str = "x", index: np.ndarray | None = None
) -> LawFit:
    """Fit L = E + (x0/x)^alpha, E >= 0, by least squares on log L from a grid of 35 starts.

    Starts: E at 0-99% of the smallest loss, and for each E the straight-line fit of log(L - E)
    on log x plus four fixed exponents. Raises FitError with fewer than 4 distinct x.
    """
    x, L = np.asarray(x, dtype=float), np.asarray(L, dtype=float)
    check_points(name, 3, **{xname: x, "L": L})
    if np.unique(x).size < 4:
        raise FitError(
            f"{name}: only {np.unique(x).size} distinct values of {xname}; E, {xname}0, alpha need 4"
        )
    center = float(np.log(x).mean())
    z, y = np.log(x) - center, np.log(L)
    starts = []
    for frac in (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99):
        E = frac * L.min()
        w = np.log(L - E)
        slope = np.polyfit(z, w, 1)[0]
        for alpha in (max(-slope, 0.02), 0.05, 0.2, 0.5, 1.0):
            starts.append((E, float(w.mean()), alpha))  # z is centred: the line's intercept is mean(w)
    lower, upper = np.array([0.0, -np.inf, 1e-6]), np.array([np.inf, np.inf, ALPHA_MAX])
    sol = solve_batched(
        offset_power_law_model(z), np.array(starts), y, np.ones(x.size), lower=lower, upper=upper
    )
    best = int(np.argmin(np.where(np.isfinite(sol.objective), sol.objective, np.inf)))
    if not np.isfinite(sol.objective[best]):
        raise FitError(f"{name}: no start gave a finite fit")
    return _law_fit(
        x, L, sol.theta[best], center, np.arange(x.size) if index is None else index, sol.converged[best]
    )


def refit_offset_power_law(
    x: np.ndarray, L: np.ndarray, W: np.ndarray, fit: LawFit
) -> tuple[np.ndarray, np.ndarray]:
    """Refit `fit`'s law for each row of weights W (B, n) at once, warm-started at its optimum.

    Returns (B, 3) samples of (E, x0, alpha) and (B,) ok: converged, finite, >= 4 distinct x.
    """
    x, L = np.asarray(x, dtype=float), np.asarray(L, dtype=float)
    cols = np.flatnonzero(np.any(W > 0, axis=0))
    x, L, W = x[cols], L[cols], W[:, cols]
    B = W.shape[0]
    z = np.log(x) - fit.center
    lower, upper = np.array([0.0, -np.inf, 1e-6]), np.array([np.inf, np.inf, ALPHA_MAX])
    sol = solve_batched(
        offset_power_law_model(z), np.tile(fit.theta, (B, 1)), np.log(L), W, lower=lower, upper=upper
    )
    E, k, alpha = sol.theta.T
    with np.errstate(over="ignore"):
        x0 = np.exp(fit.center + k / alpha)
    out = np.column_stack([E, x0, alpha])
    ok = sol.converged & np.isfinite(out).all(axis=1) & (_distinct(x, W) >= 4)
    return out, ok


def fit_power_law(
    x: np.ndarray, L: np.ndarray, *, name: str = "L(x)", xname: str = "x", index: np.ndarray | None = None
) -> LawFit:
    """Fit the pure power law L = (x0/x)^alpha (E = 0): a straight line in log-log."""
    x, L = np.asarray(x, dtype=float), np.asarray(L, dtype=float)
    check_points(name, 2, **{xname: x, "L": L})
    if np.unique(x).size < 2:
        raise FitError(f"{name}: all points have the same {xname}")
    center = float(np.log(x).mean())
    slope, k = np.polyfit(np.log(x) - center, np.log(L), 1)
    alpha = -float(slope)
    law = PowerLaw(E=0.0, x0=float(np.exp(center + k / alpha)) if alpha != 0 else float("inf"), alpha=alpha)
    L_hat = law(x)
    return LawFit(
        law,
        np.arange(x.size) if index is None else np.asarray(index),
        x,
        L,
        r2_log(L, L_hat),
        max_rel_residual(L, L_hat),
        True,
        center,
    )


def refit_power_law(x: np.ndarray, L: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted log-log line for each row of W at once: (B, 2) samples of (x0, alpha), (B,) ok."""
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(L, dtype=float))
    s = W.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mx, my = (W @ lx) / s, (W @ ly) / s
        sxx = (W * (lx - mx[:, None]) ** 2).sum(axis=1)
        sxy = (W * (lx - mx[:, None]) * (ly - my[:, None])).sum(axis=1)
        alpha = -sxy / sxx
        x0 = np.exp(mx + my / alpha)
    out = np.column_stack([x0, alpha])
    return out, np.isfinite(out).all(axis=1) & (_distinct(lx, W) >= 3)


def fit_frontier(C: np.ndarray, L: np.ndarray, *, groups: np.ndarray | None = None) -> LawFit:
    """Chinchilla approach 1 / Kaplan L(C): fit L = E + (C0/C)^alpha to the lower envelope of (C, L)."""
    C, L = np.asarray(C, dtype=float), np.asarray(L, dtype=float)
    check_points("frontier", 0, C=C, L=L)
    env = frontier_envelope(C, L, groups=groups)
    if env.size < 4:
        raise FitError(
            f"frontier: only {env.size} of {C.size} points lie on the compute frontier (beat every "
            "cheaper point); L(C) = E + (C0/C)^alpha has 3 parameters and needs at least 4"
        )
    return fit_offset_power_law(C[env], L[env], name="frontier", xname="C", index=env)


def fit_kaplan(N: np.ndarray, D: np.ndarray, L: np.ndarray, *, vary: str = "N") -> LawFit:
    """Kaplan's L(N) at the largest token budget (vary='N') or L(D) at the largest model (vary='D').

    The largest token budget is every run with D within 10% of the largest D (token counts are
    rounded to whole batches); the largest model is every run with the largest N.
    """
    N, D, L = (np.asarray(v, dtype=float) for v in (N, D, L))
    check_points(f"L({vary})", 0, N=N, D=D, L=L)
    if vary == "N":
        idx = np.flatnonzero(D.max() / (1 + CLUSTER_RTOL) <= D)
        x, name = N[idx], f"L(N) at D = {D.max():.3g} tokens"
    elif vary == "D":
        idx = np.flatnonzero(N.max() * (1 - 1e-9) <= N)
        x, name = D[idx], f"L(D) at N = {N.max():.3g} params"
    else:
        raise ValueError(f"vary: 'N' or 'D', got {vary!r}")
    return fit_offset_power_law(x, L[idx], name=name, xname=vary, index=idx)


def simpler_law(offset: LawFit, pure: LawFit) -> LawFit:
    """The law an extrapolation should trust: the pure power law unless the offset law's extra
    parameter E earns its place by the small-sample AIC on the same points (3 parameters on 4 points
    always fit, so there the offset cannot win)."""
    if aicc_log(offset.L, offset.predict(offset.x), 3) < aicc_log(pure.L, pure.predict(pure.x), 2):
        return offset
    return pure
