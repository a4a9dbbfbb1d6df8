"""Sweeps drawn from a known loss surface, so tests and benchmarks can check what the fitter recovers.

Losses are L(N, D) of the surface times exp(noise * standard normal): relative, log-normal noise
like the seed-to-seed spread of real runs. Compute is C = k N D.
"""

from __future__ import annotations

import numpy as np

from harness.fit.laws import LossSurface
from harness.fit.observations import Observations


def _noisy(L: np.ndarray, noise: float, rng: np.random.Generator | None) -> np.ndarray:
    if noise == 0:
        return L
    rng = rng if rng is not None else np.random.default_rng(0)
    return L * np.exp(noise * rng.standard_normal(L.shape))


def _observations(surface, N, D, k, noise, rng, curves, budget) -> Observations:
    L = _noisy(surface.loss(N, D), noise, rng)
    ids = np.array([f"r{i:04d}" for i in range(N.size)])
    if curves:
        frac = np.arange(1, curves + 1) / curves
        run = np.repeat(np.arange(N.size), curves)
        d = (D[:, None] * frac[None, :]).ravel()
        cl = _noisy(surface.loss(N[run], d), noise, rng)
        return Observations(
            ids,
            N,
            D,
            k * N * D,
            L,
            budget=budget,
            curve_run=run,
            curve_D=d,
            curve_C=k * N[run] * d,
            curve_L=cl,
            flops="6n",
        )
    return Observations(ids, N, D, k * N * D, L, budget=budget, flops="6n")


def isoflop_observations(
    surface: LossSurface,
    budgets: np.ndarray,
    *,
    sizes: int = 9,
    span: float = 10.0,
    k: float = 6.0,
    noise: float = 0.0,
    curves: int = 0,
    rng: np.random.Generator | None = None,
) -> Observations:
    """`sizes` runs per compute budget, N log-spaced over [N_opt/span, N_opt*span] around the true optimum."""
    budgets = np.asarray(budgets, dtype=float)
    mult = np.logspace(-np.log10(span), np.log10(span), sizes)
    N = (surface.N_opt(budgets, k)[:, None] * mult[None, :]).ravel()
    C = np.repeat(budgets, sizes)
    labels = np.repeat([f"{c:.3g}" for c in budgets], sizes)
    return _observations(surface, N, C / (k * N), k, noise, rng, curves, labels)


def grid_observations(
    surface: LossSurface,
    N: np.ndarray,
    D: np.ndarray,
    *,
    k: float = 6.0,
    noise: float = 0.0,
    curves: int = 0,
    rng: np.random.Generator | None = None,
) -> Observations:
    """Every size in N trained on every token budget in D (labelled by the token budget)."""
    NN, DD = np.meshgrid(np.asarray(N, dtype=float), np.asarray(D, dtype=float), indexing="ij")
    labels = np.array([f"{d:.3g}" for d in DD.ravel()])
    return _observations(surface, NN.ravel(), DD.ravel(), k, noise, rng, curves, labels)


def ladder_observations(
    surface: LossSurface,
    budgets: np.ndarray,
    *,
    sizes: int = 6,
    step: float = 1.5,
    k: float = 6.0,
    replicate: tuple[int, ...] = (),
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> Observations:
    """`sizes` runs per compute budget, `step` apart in N and centred on the true optimum (the design
    issue 14 asks for); at the budgets indexed by `replicate`, the two sizes nearest the optimum are
    trained twice (seed 1), so the sweep measures its own seed noise."""
    budgets = np.asarray(budgets, dtype=float)
    mult = step ** (np.arange(sizes) - (sizes - 1) / 2)
    N, C, seed, label = [], [], [], []
    for i, c in enumerate(budgets):
        for j, m in enumerate(mult):
            near = j in ((sizes - 1) // 2, sizes // 2)
            for s in range(2 if i in replicate and near else 1):
                N.append(float(surface.N_opt(c, k)) * m)
                C.append(c)
                seed.append(str(s))
                label.append(f"{c:.3g}")
    N, C = np.array(N), np.array(C)
    D = C / (k * N)
    L = _noisy(surface.loss(N, D), noise, rng)
    ids = np.array([f"r{i:04d}" for i in range(N.size)])
    return Observations(
        ids, N, D, C, L, budget=np.array(label), seed=np.array(seed), design="isoflop", flops="6n"
    )
