"""Chinchilla approach 3: the parametric loss L(N, D) = E + A/N^alpha + B/D^beta.

As Hoffmann et al. 2022 (appendix D.2) describe: minimise the Huber loss (delta = 1e-3) of the
log-space residuals of log L_hat = LSE(a - alpha log N, b - beta log D, e), with A = exp(a),
B = exp(b), E = exp(e), by L-BFGS-B from a grid of starting points. Their grid is absolute
(alpha, beta in [0, 2], e in [-1, 1.5], a, b in [0, 25]) because their losses and sizes are; ours
is placed relative to the data (E at 5-95% of the smallest loss, each power term worth 2-100% of
it at the sweep's typical size and token count, exponents 0.1-1.5), because tiny models on a
synthetic language live elsewhere. The whole grid's objective is evaluated at once and L-BFGS-B
runs from its 8 best points. L-BFGS-B crawls along Huber's kinks (40-100 iterations per start, each
a scipy call that is slow when BLAS threads compete for busy cores), so it stops after 10 and the
8 ends are finished together by the batched damped-Newton iteration of `harness.fit.solve`, the one
the bootstrap refits use; the best of the 8 is the fit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from harness.fit.intervals import Intervals
from harness.fit.laws import FitError, LossSurface, check_points, distinct_per_row, max_rel_residual, r2_log
from harness.fit.solve import huber, solve_batched, surface_model

HUBER_DELTA = 1e-3
LBFGSB_MAXITER = 10
# Huber's linear arms make the batched solver crawl when most residuals exceed delta (noisy or small
# sweeps): 200 iterations left 92% of the smoke sweep's refits unconverged, 1000 left 2%.
MAXITER = 2000
EXP_MAX = 5.0
_LOWER = np.array([-np.inf, -np.inf, -np.inf, 0.0, 0.0])
_UPPER = np.array([np.inf, np.inf, np.inf, EXP_MAX, EXP_MAX])


@dataclass(frozen=True)
class ParametricFit:
    """A fitted LossSurface and what it implies for compute-optimal training."""

    surface: LossSurface
    k: float  # C = k N D links compute to the allocation (6 for flops=6n; the sweep's median C/(ND) else)
    delta: float  # Huber threshold on log-space residuals
    objective: float  # sum of Huber losses at the optimum
    converged: bool
    n_points: int
    r2: float  # of log L over all runs
    max_rel_residual: float
    center: tuple[float, float]  # mean log N and log D: the solver's parameters are centred there
    ci: Intervals = field(default_factory=Intervals)

    @property
    def theta(self) -> np.ndarray:
        """Solver parameters (a, b, e, alpha, beta) around the centre: the warm start of refits."""
        s, (mN, mD) = self.surface, self.center
        return np.array([np.log(s.A) - s.alpha * mN, np.log(s.B) - s.beta * mD, np.log(s.E), s.alpha, s.beta])

    @property
    def allocates(self) -> bool:
        """False when the fit degenerated (A or B -> 0): N_opt and D_opt are then 0 or infinite."""
        return bool(0 < self.surface.G < np.inf)

    def compute_optimal(self, C: float) -> dict[str, float]:
        """N_opt, D_opt and tokens per parameter at compute C (FLOPs), with the exponents a, b and G."""
        s = self.surface
        N, D = float(s.N_opt(C, self.k)), float(s.D_opt(C, self.k))
        return {
            "C": float(C),
            "N_opt": N,
            "D_opt": D,
            "tokens_per_param": D / N if N > 0 else None,  # N_opt underflows in a degenerate fit
            "a": s.a,
            "b": s.b,
            "G": s.G,
        }


def surface_from_theta(theta: np.ndarray, center: tuple[float, float]) -> np.ndarray:
    """(B, 5) solver parameters -> (B, 5) columns E, A, B, alpha, beta."""
    theta = np.atleast_2d(theta)
    a, b, e, alpha, beta = theta.T
    with np.errstate(over="ignore"):
        return np.column_stack(
            [np.exp(e), np.exp(a + alpha * center[0]), np.exp(b + beta * center[1]), alpha, beta]
        )


def _grid(L: np.ndarray) -> np.ndarray:
    lmin = float(L.min())
    exps = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5)
    es = np.log(lmin * np.array([0.05, 0.3, 0.6, 0.85, 0.95]))
    terms = np.log(lmin * np.array([0.02, 0.1, 0.3, 1.0]))
    return np.array(
        [(a, b, e, al, be) for al, be, e, a, b in itertools.product(exps, exps, es, terms, terms)]
    )


def fit_parametric(
    N: np.ndarray,
    D: np.ndarray,
    L: np.ndarray,
    *,
    delta: float = HUBER_DELTA,
    k: float = 6.0,
    starts: int = 8,
) -> ParametricFit:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta by the Huber/LSE recipe of the module docstring.

    Raises FitError with fewer than 3 distinct N or D, or fewer than 6 distinct (N, D) points.
    """
    N, D, L = (np.asarray(v, dtype=float) for v in (N, D, L))
    check_points("parametric", 5, N=N, D=D, L=L)
    nN, nD = np.unique(N).size, np.unique(D).size
    npts = np.unique(np.column_stack([N, D]), axis=0).shape[0]
    if nN < 3 or nD < 3 or npts < 6:
        raise FitError(
            f"parametric: {nN} distinct N, {nD} distinct D and {npts} distinct (N, D); L(N, D) needs "
            "3 sizes, 3 token counts and 6 points to separate E, A/N^alpha and B/D^beta"
        )
    center = (float(np.log(N).mean()), float(np.log(D).mean()))
    x, y, t = np.log(N) - center[0], np.log(D) - center[1], np.log(L)
    model = surface_model(x, y)
    grid = _grid(L)
    F_grid = np.concatenate(
        [
            np.sum(huber(model(chunk)[0] - t, delta), axis=1)
            for chunk in np.array_split(grid, -(-len(grid) // 500))
        ]
    )
    scale = 1.0 / (delta * delta)  # order-one objective, so L-BFGS-B's tolerances mean something

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        f, J = model(theta[None, :])
        r = f[0] - t
        return scale * float(np.sum(huber(r, delta))), scale * (np.clip(r, -delta, delta) @ J[0])

    bounds = list(zip(_LOWER, _UPPER, strict=True))
    ends = []
    for i in np.argsort(F_grid)[:starts]:
        res = minimize(
            objective,
            grid[i],
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": LBFGSB_MAXITER, "ftol": 1e-12, "gtol": 1e-8},
        )
        ends.append(res.x if np.all(np.isfinite(res.x)) else grid[i])
    sol = solve_batched(
        model, np.array(ends), t, np.ones(t.size), lower=_LOWER, upper=_UPPER, delta=delta, maxiter=MAXITER
    )
    F = np.where(np.isfinite(sol.objective), sol.objective, np.inf)
    best = int(np.argmin(F))
    if not np.isfinite(F[best]):
        raise FitError("parametric: no starting point gave a finite fit")
    E, A, B, alpha, beta = surface_from_theta(sol.theta[best], center)[0]
    surface = LossSurface(E=float(E), A=float(A), B=float(B), alpha=float(alpha), beta=float(beta))
    L_hat = surface.loss(N, D)
    return ParametricFit(
        surface=surface,
        k=float(k),
        delta=delta,
        objective=float(F[best]),
        converged=bool(sol.converged[best]),
        n_points=int(N.size),
        r2=r2_log(L, L_hat),
        max_rel_residual=max_rel_residual(L, L_hat),
        center=center,
    )


def refit_parametric(
    N: np.ndarray, D: np.ndarray, Y: np.ndarray, fit: ParametricFit, W: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Refit each row of losses Y (B, n) (weights W (B, n), default 1) at once, from two starts:
    `fit`'s optimum, and the same with E lifted to 30% of the smallest loss, the better kept, so that a
    fit whose E sits at its bound 0 does not hold every refit there.

    Returns (B, 5) samples of (E, A, B, alpha, beta) and (B,) ok: converged, finite, and the
    rows' weights still hold 3 sizes, 3 token counts and 6 distinct points.
    """
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    B = Y.shape[0]
    if B == 0:
        return np.zeros((0, 5)), np.zeros(0, dtype=bool)
    W = np.ones_like(Y) if W is None else np.broadcast_to(np.asarray(W, dtype=float), Y.shape)
    x, y = np.log(N) - fit.center[0], np.log(D) - fit.center[1]
    lifted = fit.theta.copy()
    lifted[2] = max(lifted[2], np.log(0.3 * float(Y.min())))
    starts = np.concatenate([np.tile(fit.theta, (B, 1)), np.tile(lifted, (B, 1))])
    sol = solve_batched(
        surface_model(x, y),
        starts,
        np.log(np.concatenate([Y, Y])),
        np.concatenate([W, W]),
        lower=_LOWER,
        upper=_UPPER,
        delta=fit.delta,
        maxiter=MAXITER,
    )
    obj = np.where(np.isfinite(sol.objective), sol.objective, np.inf).reshape(2, B)
    pick = np.argmin(obj, axis=0) * B + np.arange(B)
    out = surface_from_theta(sol.theta[pick], fit.center)
    _, pair = np.unique(np.column_stack([N, D]), axis=0, return_inverse=True)
    support = (
        (distinct_per_row(N, W) >= 3)
        & (distinct_per_row(D, W) >= 3)
        & (distinct_per_row(pair.ravel().astype(float), W) >= 6)
    )
    return out, sol.converged[pick] & np.isfinite(out).all(axis=1) & support


def fit_surface_with_floor(
    N: np.ndarray, D: np.ndarray, L: np.ndarray, fit: ParametricFit, E: float
) -> LossSurface:
    """The surface closest to the losses (the same Huber objective) with E held at the given value
    (0: no floor), warm-started from `fit`: a smooth law anchored to a sweep, for the calibration."""
    N, D, L = (np.asarray(v, dtype=float) for v in (N, D, L))
    x, y = np.log(N) - fit.center[0], np.log(D) - fit.center[1]
    e = np.log(max(E, 1e-12 * float(L.min())))
    theta = fit.theta.copy()
    theta[2] = e
    lower, upper = _LOWER.copy(), _UPPER.copy()
    lower[2] = upper[2] = e
    sol = solve_batched(
        surface_model(x, y),
        theta[None, :],
        np.log(L),
        np.ones(L.size),
        lower=lower,
        upper=upper,
        delta=fit.delta,
        maxiter=MAXITER,
    )
    E_, A, B_, alpha, beta = surface_from_theta(sol.theta, fit.center)[0]
    return LossSurface(E=float(E), A=float(A), B=float(B_), alpha=float(alpha), beta=float(beta))
