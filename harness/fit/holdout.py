"""Hold-out prediction: fit the frontier without the most expensive budgets, predict them.

Which runs are held out: with IsoFLOP budgets, the top budgets, at least 2 and at least
fit.holdout_frac of the runs; without compute budgets, the points with the most compute, at least 2
and at least that share. Never a single run: one point cannot tell a prediction from luck. The
targets are the held-out frontier points (the held-out budgets' fitted minima; without budgets,
the held-out points on the frontier of all points, else the best held-out point).

Three laws are fitted to the remaining frontier points and predict the targets, all reported:
    offset  E + (C0/C)^alpha        the frontier law
    pure    (C0/C)^alpha            no floor
    floor   E_known + (C0/C)^alpha  only when the source's irreducible loss is known (synthetic data)
One of them decides the verdict's hold-out check (fit.holdout_law; why that one: docs/fit.md). Its
check is a prediction test: each target's miss in log L against its predicted spread,
z = log(L_obs / L_pred) / sqrt(s_pred^2 + s_obs^2), s_pred from the law's linearised covariance
under the measured noise, s_obs the target's own noise. The parametric L(N, D), which describes
every allocation, predicts every held-out run, reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.fit.budgets import Budgets
from harness.fit.frontier import (
    FrontierPoints,
    envelope_mask,
    floor_power_law_batch,
    offset_power_law_batch,
    power_law_batch,
)
from harness.fit.intervals import Intervals
from harness.fit.laws import FitError, power_law_values
from harness.fit.observations import Points

LAWS = {"offset": "E + (C0/C)^alpha", "pure": "(C0/C)^alpha", "floor": "E_known + (C0/C)^alpha"}
MIN_TRAIN = {"offset": 4, "pure": 3, "floor": 3}  # frontier points a law needs to be tested (p + 1)


@dataclass(frozen=True)
class Split:
    """held (q,) bool over the frontier's points (budgets, or points), and the rule as a phrase."""

    held: np.ndarray
    rule: str


def split_holdout(points: Points, budgets: Budgets, *, frac: float) -> Split:
    """The held-out budgets or points (module docstring); FitError when fewer than 3 would remain."""
    runs = float(points.k.sum())
    if budgets.isoflop:
        nb = len(budgets.labels)
        runs_in = np.array([points.k[budgets.members(g)].sum() for g in range(nb)])
        h = 2
        while h < nb and runs_in[nb - h :].sum() < frac * runs:
            h += 1
        if nb - h < 3:
            raise FitError(
                f"holdout: {nb} compute budgets; holding out the top {h} leaves {nb - h}, and a law "
                "tested on its prediction needs at least 3 to be fitted"
            )
        held = np.arange(nb) >= nb - h
        n_runs = int(runs_in[held].sum())
        return Split(held, f"top {h} compute budgets ({', '.join(budgets.labels[nb - h :])}; {n_runs} runs)")
    m = points.size
    h = max(2, int(np.ceil(frac * m - 1e-9)))
    if m - h < 3:
        raise FitError(f"holdout: {m} points; holding out {h} leaves fewer than 3 to fit")
    order = np.argsort(points.C, kind="stable")
    held = np.zeros(m, dtype=bool)
    held[order[m - h :]] = True
    return Split(held, f"{h} points with the most compute (C >= {points.C[held].min():.3g} FLOPs)")


@dataclass(frozen=True)
class Predictions:
    """One law fitted without the held-out points, for B rows: params (B, 3) (E, C0, alpha),
    pred (B, q) at every frontier point, ok (B,), and per row the mean and largest relative error
    and the largest |z| over the targets."""

    params: np.ndarray
    pred: np.ndarray
    ok: np.ndarray
    rel_error: np.ndarray
    max_rel_error: np.ndarray
    max_z: np.ndarray


def _log_jacobian(params: np.ndarray, x: np.ndarray, free_E: bool) -> np.ndarray:
    """(B, n, p) derivatives of log L_hat with respect to (E, log C0, alpha), or (log C0, alpha)."""
    E, C0, alpha = (params[:, j : j + 1] for j in range(3))
    with np.errstate(all="ignore"):
        P = np.exp(alpha * (np.log(C0) - np.log(x)[None, :]))
        q = P / (E + P)
        cols = [q * alpha, q * (np.log(C0) - np.log(x)[None, :])]
        if free_E:
            cols.insert(0, 1.0 / (E + P))
    return np.stack(cols, axis=-1)


def prediction_sigma(
    params: np.ndarray, x: np.ndarray, W: np.ndarray, sigma: np.ndarray, *, free_E: bool
) -> np.ndarray:
    """(B, q) standard deviation of log L_pred at every x from the law's linearised covariance,
    fitted to the points W (B, q) weighs, each with relative noise sigma (B, q)."""
    J = np.nan_to_num(_log_jacobian(params, x, free_E), nan=np.inf)
    Jw = np.where(W[..., None] > 0, J, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        F = np.einsum("bnp,bn,bnq->bpq", Jw, W / sigma**2, Jw)
    # a law too extreme to linearise (an overflowing C0) gets no spread: its prediction counts as failed
    bad = ~np.isfinite(F).all(axis=(1, 2)) | ~np.isfinite(J).all(axis=(1, 2))
    F[bad] = np.eye(F.shape[-1])
    F = F + 1e-12 * np.eye(F.shape[-1]) * np.maximum(np.einsum("bii->b", F), 1e-300)[:, None, None]
    cov = np.linalg.pinv(F)
    J[bad] = 0.0
    out = np.sqrt(np.maximum(np.einsum("bnp,bpq,bnq->bn", J, cov, J), 0.0))
    out[bad] = np.nan
    return out


def _train_and_targets(fp: FrontierPoints, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, q) weights of the training frontier and 0/1 of the targets, per row."""
    if fp.by_budget:
        return np.broadcast_to(~held, fp.Y.shape).astype(float), fp.W * held
    train = envelope_mask(fp.x, fp.Y, np.broadcast_to(~held, fp.Y.shape)).astype(float)
    T = fp.W * held
    none = T.sum(axis=1) == 0
    if none.any():
        best = np.argmin(np.where(held, fp.Y, np.inf), axis=1)
        T[np.flatnonzero(none), best[none]] = 1.0
    return train, T


def predict_holdout(
    fp: FrontierPoints, held: np.ndarray, floor: float | None
) -> tuple[dict[str, Predictions], np.ndarray]:
    """Every law of the module docstring fitted to each row's training frontier, its predictions,
    and the targets (B, q) 0/1."""
    W, T = _train_and_targets(fp, held)
    fits = {"offset": offset_power_law_batch(fp.x, fp.Y, W), "pure": power_law_batch(fp.x, fp.Y, W)}
    if floor is not None:
        fits["floor"] = floor_power_law_batch(fp.x, fp.Y, W, floor)
    n_train = (W > 0).sum(axis=1)
    out = {}
    for name, (params, ok) in fits.items():
        ok = ok & (n_train >= MIN_TRAIN[name])
        pred = power_law_values(params, fp.x)
        s_pred = prediction_sigma(params, fp.x, W, fp.sigma, free_E=name == "offset")
        with np.errstate(all="ignore"):
            rel = np.abs(pred - fp.Y) / fp.Y
            z = np.abs(np.log(fp.Y / pred)) / np.sqrt(s_pred**2 + fp.sigma**2)
            n_t = T.sum(axis=1)
            mean_rel = (rel * T).sum(axis=1) / n_t
        max_rel = np.where(T > 0, rel, -np.inf).max(axis=1)
        max_z = np.where(T > 0, z, -np.inf).max(axis=1)
        good = ok & np.isfinite(max_rel) & np.isfinite(max_z)
        out[name] = Predictions(params, pred, good, mean_rel, max_rel, max_z)
    return out, T


@dataclass(frozen=True)
class LawPrediction:
    """One law's hold-out prediction on the observed losses (row 0), with bootstrap intervals."""

    law: str  # offset | pure | floor
    formula: str
    E: float
    C0: float
    alpha: float
    L_pred: np.ndarray  # at the targets
    rel_error: float
    max_rel_error: float
    max_z: float
    ci: Intervals = field(default_factory=Intervals)


@dataclass(frozen=True)
class Holdout:
    """The hold-out: which points, the targets, each law's prediction, and the deciding law."""

    rule: str
    held_runs: tuple[str, ...]  # run ids of the held-out runs
    target_C: np.ndarray
    target_L: np.ndarray
    target_source: tuple[str, ...]
    decides: str  # the law whose prediction the verdict tests
    laws: dict[str, LawPrediction]
    failed: dict[str, str] = field(default_factory=dict)  # law -> why it could not predict
    parametric_rel_error: float | None = None  # L(N, D) fitted without the held-out runs, over all of them
    parametric_max_rel_error: float | None = None
    parametric_note: str = ""

    @property
    def decision(self) -> LawPrediction | None:
        return self.laws.get(self.decides)
