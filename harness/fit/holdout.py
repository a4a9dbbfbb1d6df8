"""Hold-out prediction: fit on the cheaper runs, predict the most expensive ones.

Which runs are held out: the top compute budget when the runs come in at least 3 IsoFLOP budgets,
else the holdout_frac share of runs with the most compute (at least 1 run). The frontier fitted on
the rest (the offset law E + (C0/C)^alpha, or the pure power law when the offset's extra parameter
does not earn its place on those points by the small-sample AIC: see frontier.simpler_law)
predicts the held-out frontier points: the held-out runs on the frontier of all runs (that
beat every cheaper run; in an IsoFLOP design the best run of the top budget), because the frontier
describes the best loss at a compute, not that of a badly allocated run. When no held-out run makes
the frontier (more compute stopped helping), the best held-out run is the target, and the miss
shows. The parametric law, which does describe every allocation, predicts every held-out run.
Intervals come from bootstrapping the fitted runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.fit.bootstrap import percentile_interval, resample_counts
from harness.fit.frontier import (
    Budgets,
    LawFit,
    envelope_weights,
    fit_frontier,
    fit_power_law,
    frontier_envelope,
    refit_offset_power_law,
    refit_power_law,
    simpler_law,
)
from harness.fit.laws import FitError
from harness.fit.parametric import ParametricFit, fit_parametric, refit_parametric


@dataclass(frozen=True)
class Holdout:
    """Prediction errors of laws fitted without the held-out runs; errors are |pred - obs| / obs."""

    rule: str  # which runs were held out, as a phrase
    held: np.ndarray  # indices of the held-out runs
    targets: np.ndarray  # indices of the held-out runs the frontier predicts (see the module docstring)
    frontier: LawFit  # fitted on the other runs: the law simpler_law picked
    law: str  # which: "E + (C0/C)^alpha" or "(C0/C)^alpha"
    L_pred: np.ndarray  # its prediction at the targets, nats/token
    rel_error: float  # mean over targets
    max_rel_error: float
    parametric: ParametricFit | None = None  # fitted on the other runs (None: not enough of them)
    parametric_pred: np.ndarray | None = None  # its prediction at every held-out run
    parametric_rel_error: float | None = None
    parametric_max_rel_error: float | None = None
    notes: tuple[str, ...] = ()
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)  # bootstrap resamples dropped


def split_holdout(C: np.ndarray, budgets: Budgets, *, frac: float) -> tuple[np.ndarray, str]:
    """Indices of the held-out runs and a phrase naming them (see the module docstring)."""
    C = np.asarray(C, dtype=float)
    k = len(budgets.labels)
    if budgets.isoflop and k >= 3:
        held = np.flatnonzero(budgets.ids == k - 1)
        return (
            held,
            f"top compute budget {budgets.labels[-1]} ({held.size} runs, C ~ {budgets.C[-1]:.3g} FLOPs)",
        )
    n = max(1, int(round(frac * C.size)))
    held = np.sort(np.argsort(C, kind="stable")[C.size - n :])
    return held, f"{n} runs with the most compute ({frac:.0%} of {C.size}, C >= {C[held].min():.3g} FLOPs)"


def fit_holdout(
    N: np.ndarray,
    D: np.ndarray,
    C: np.ndarray,
    L: np.ndarray,
    budgets: Budgets,
    *,
    frac: float,
    k: float = 6.0,
    resamples: int = 0,
    ci: float = 0.95,
    rng: np.random.Generator | None = None,
) -> Holdout:
    """Fit the frontier (and the parametric law) without the held-out runs and predict them.

    Raises FitError when the remaining runs cannot carry a frontier fit.
    """
    N, D, C, L = (np.asarray(v, dtype=float) for v in (N, D, C, L))
    held, rule = split_holdout(C, budgets, frac=frac)
    train = np.setdiff1d(np.arange(C.size), held)
    groups = budgets.ids if budgets.isoflop else None
    g_train = groups[train] if groups is not None else None
    try:
        offset = fit_frontier(C[train], L[train], groups=g_train)
    except FitError as exc:
        raise FitError(f"holdout: without the {rule}: {exc}") from None
    front = simpler_law(offset, fit_power_law(offset.x, offset.L, index=offset.index))
    targets = np.intersect1d(held, frontier_envelope(C, L, groups=groups))
    if targets.size == 0:
        targets = held[[np.argmin(L[held])]]
    pred = front.predict(C[targets])
    err = np.abs(pred - L[targets]) / L[targets]
    notes: list[str] = []
    par = par_pred = par_err = None
    try:
        par = fit_parametric(N[train], D[train], L[train], k=k)
        par_pred = par.surface.loss(N[held], D[held])
        par_err = np.abs(par_pred - L[held]) / L[held]
    except FitError as exc:
        notes.append(str(exc))

    cis: dict[str, tuple[float, float]] = {}
    failed: dict[str, int] = {}
    if resamples > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        counts = resample_counts(train.size, resamples, rng)
        W = envelope_weights(C[train], L[train], counts, groups=g_train)
        if front is offset:
            samples, ok = refit_offset_power_law(C[train], L[train], W, front)
            E, C0, alpha = samples[ok].T
        else:
            samples, ok = refit_power_law(C[train], L[train], W)
            (C0, alpha), E = samples[ok].T, np.zeros(int(ok.sum()))
        with np.errstate(over="ignore", invalid="ignore"):
            p = E[:, None] + np.exp(alpha[:, None] * (np.log(C0)[:, None] - np.log(C[targets])[None, :]))
        e = np.abs(p - L[targets]) / L[targets]
        cis["rel_error"] = percentile_interval(e.mean(axis=1), ci)
        cis["max_rel_error"] = percentile_interval(e.max(axis=1), ci)
        failed["frontier"] = int((~ok).sum())
        if par is not None:
            s, ok = refit_parametric(N[train], D[train], L[train], par, counts)
            Es, As, Bs, al, be = (c[:, None] for c in s[ok].T)
            with np.errstate(over="ignore", invalid="ignore"):
                p = Es + As * N[held] ** -al + Bs * D[held] ** -be
            e = np.abs(p - L[held]) / L[held]
            cis["parametric_rel_error"] = percentile_interval(e.mean(axis=1), ci)
            cis["parametric_max_rel_error"] = percentile_interval(e.max(axis=1), ci)
            failed["parametric"] = int((~ok).sum())
    return Holdout(
        rule=rule,
        held=held,
        targets=targets,
        frontier=front,
        law="E + (C0/C)^alpha" if front is offset else "(C0/C)^alpha",
        L_pred=pred,
        rel_error=float(err.mean()),
        max_rel_error=float(err.max()),
        parametric=par,
        parametric_pred=par_pred,
        parametric_rel_error=None if par_err is None else float(par_err.mean()),
        parametric_max_rel_error=None if par_err is None else float(par_err.max()),
        notes=tuple(notes),
        ci=cis,
        failed=failed,
    )
