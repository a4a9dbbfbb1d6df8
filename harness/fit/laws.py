"""Closed forms of the laws the fitter fits, the numbers that judge a fit, and the error for bad input.

Symbols as in the legend of `harness.fit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class FitError(ValueError):
    """Input a law cannot be fitted to: too few points, non-finite or non-positive values, no spread.

    The message is one line that names the problem and the numbers behind it.
    """


@dataclass(frozen=True)
class PowerLaw:
    """L(x) = E + (x0 / x)^alpha, with E >= 0 (E = 0: the pure power law).

    Kaplan et al. 2020's L(C), L(N) and L(D) with an irreducible offset: x is C in FLOPs, N in
    parameters or D in tokens, x0 is in the same unit as x, L and E in nats/token.
    """

    E: float
    x0: float
    alpha: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return power_law_values(np.array([[self.E, self.x0, self.alpha]]), x)[0].reshape(np.shape(x))


def power_law_values(params: np.ndarray, x: np.ndarray | float) -> np.ndarray:
    """E + (x0/x)^alpha for each row (E, x0, alpha) of params (B, 3) at x (t,) or (B, t): (B, t).

    The one evaluator of the law (fit, bootstrap bands, hold-out, comparisons). The exp/log form
    because (x0/x)^alpha overflows for x0 ~ 1e30 before the power brings it down.
    """
    params = np.atleast_2d(np.asarray(params, dtype=float))
    E, x0, alpha = (params[:, j : j + 1] for j in range(3))
    logx = np.log(np.atleast_1d(np.asarray(x, dtype=float)))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return E + np.exp(alpha * (np.log(x0) - logx))


def power_law_band(params: np.ndarray, x: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Pointwise central-ci interval of the law over bootstrap samples params (B, 3) at x (t,);
    None with fewer than 2 samples."""
    if params is None or len(params) < 2:
        return None
    lo, hi = np.nanquantile(power_law_values(params, x), [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    return lo, hi


@dataclass(frozen=True)
class LossSurface:
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2).

    The compute-optimal allocation minimises L subject to C = k N D (k = 6 in the paper's
    accounting; see `ParametricFit.k` for the value a sweep implies):
        N_opt(C) = G (C/k)^a,  D_opt(C) = G^-1 (C/k)^b,  a = beta/(alpha+beta),  b = alpha/(alpha+beta),
        G = (alpha A / (beta B))^(1/(alpha+beta)),  so that k N_opt D_opt = C exactly.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, N: np.ndarray | float, D: np.ndarray | float) -> np.ndarray:
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A * N**-self.alpha + self.B * D**-self.beta

    @property
    def a(self) -> float:
        """Exponent of N_opt ~ C^a."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt ~ C^b (a + b = 1)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def N_opt(self, C: np.ndarray | float, k: float = 6.0) -> np.ndarray:
        return self.G * (np.asarray(C, dtype=float) / k) ** self.a

    def D_opt(self, C: np.ndarray | float, k: float = 6.0) -> np.ndarray:
        with np.errstate(divide="ignore"):  # G = 0 when a fit degenerates (A -> 0): D_opt = inf
            return (np.asarray(C, dtype=float) / k) ** self.b / self.G


def r2_log(L: np.ndarray, L_hat: np.ndarray) -> float:
    """Coefficient of determination of log L: 1 - SS_res / SS_tot, both in log space."""
    y, y_hat = np.log(L), np.log(L_hat)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum((y - y_hat) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def max_rel_residual(L: np.ndarray, L_hat: np.ndarray) -> float:
    """Largest |L_hat - L| / L over the points."""
    return float(np.max(np.abs(L_hat - L) / L))


def check_points(name: str, n_params: int, **arrays: np.ndarray) -> None:
    """Raise FitError unless the arrays are equally long, finite, positive and outnumber the parameters.

    A law with p parameters needs p + 1 points: p of them only interpolate, leaving nothing to test.
    """
    sizes = {k: np.shape(v) for k, v in arrays.items()}
    if len({s for s in sizes.values()}) != 1 or len(next(iter(sizes.values()))) != 1:
        raise FitError(f"{name}: arrays must be 1-D and equally long, got shapes {sizes}")
    for key, v in arrays.items():
        v = np.asarray(v, dtype=float)
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            i = int(bad[0])
            more = f"; {bad.size - 1} more like it" if bad.size > 1 else ""
            raise FitError(f"{name}: {key}[{i}] = {float(v[i])} (must be finite and > 0{more})")
    n = len(next(iter(arrays.values())))
    if n < n_params + 1:
        raise FitError(
            f"{name}: {n} point(s) for a law with {n_params} parameters; need at least {n_params + 1}"
        )


def distinct_per_row(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(B,) number of distinct values of x (n,) among the points each row of W (B, n) weighs > 0."""
    _, code = np.unique(x, return_inverse=True)
    onehot = np.zeros((x.size, code.max() + 1))
    onehot[np.arange(x.size), code.ravel()] = 1.0
    return ((np.atleast_2d(W) > 0).astype(float) @ onehot > 0).sum(axis=1)
