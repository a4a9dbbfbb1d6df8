"""A sweep's runs as the fitter sees them: `Observations` (one entry per run) -> `Points` (one per
trained configuration), the unit every analysis fits.

`prepare_points`:
  1. sorts the runs canonically (by run id, then the numbers), so that no result depends on the order
     of the rows: ties, envelopes and bootstrap draws all follow this order;
  2. counts exact duplicates once (the same run id, or the same N, D, C, L, seed and budget: a row
     copied twice) and lists them;
  3. averages replicates (the same N, D and budget with different losses: other seeds, or unlabelled
     repeats) into one point: its loss is their mean, its weight their count, and their spread
     around that mean is the seed noise (`harness.fit.noise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.config import DESIGNS
from harness.fit.laws import FitError


@dataclass(frozen=True)
class Observations:
    """The runs of a sweep as arrays, in the units and conventions the laws use.

    run_id, N (params), D (tokens), C (FLOPs), L (val loss, nats/token): one entry per run.
    budget: the sweep's budget label per run (compute or token budget), or None.
    seed: the training seed per run (replicates share N, D and budget), or None.
    L_se: the standard error of each run's val loss (nats/token; 0 or nan: unknown), or None.
    design: the sweep's declared design (grid | isoflop | paired, from sweep.json), None: unknown.
    curve_*: the eval points of all runs' training curves (curve_run indexes the runs), or None.
    params / flops: which convention N and C follow; notes: how they were derived.
    """

    run_id: np.ndarray
    N: np.ndarray
    D: np.ndarray
    C: np.ndarray
    L: np.ndarray
    budget: np.ndarray | None = None
    seed: np.ndarray | None = None
    L_se: np.ndarray | None = None
    design: str | None = None
    curve_run: np.ndarray | None = None
    curve_D: np.ndarray | None = None
    curve_C: np.ndarray | None = None
    curve_L: np.ndarray | None = None
    params: str = "total"
    flops: str = "full"
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "run_id", np.asarray(self.run_id).astype(str))
        n = self.run_id.size
        for key in ("N", "D", "C", "L"):
            v = np.asarray(getattr(self, key), dtype=float)
            put(self, key, v)
            if v.shape != (n,):
                raise FitError(f"observations: {key} has shape {v.shape}, expected ({n},) like run_id")
            bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
            if bad.size:
                i = int(bad[0])
                more = f"; {bad.size - 1} more runs like it" if bad.size > 1 else ""
                raise FitError(
                    f"observations: {key} = {float(v[i])} for run {self.run_id[i]} "
                    f"(must be finite and > 0{more})"
                )
        for key in ("budget", "seed"):
            v = getattr(self, key)
            if v is not None:
                put(self, key, np.asarray(v).astype(str))
                if getattr(self, key).shape != (n,):
                    raise FitError(f"observations: {key} has shape {np.shape(v)}, expected ({n},)")
        if self.L_se is not None:
            se = np.asarray(self.L_se, dtype=float)
            if se.shape != (n,):
                raise FitError(f"observations: L_se has shape {se.shape}, expected ({n},)")
            put(self, "L_se", np.where(np.isfinite(se) & (se > 0), se, np.nan))
        if self.design is not None and self.design not in DESIGNS:
            raise FitError(f"observations: design {self.design!r}; allowed: {', '.join(DESIGNS)} or None")
        if self.curve_run is not None:
            put(self, "curve_run", np.asarray(self.curve_run, dtype=int))
            m = self.curve_run.size
            if m and (self.curve_run.min() < 0 or self.curve_run.max() >= n):
                raise FitError(f"observations: curve_run must index the {n} runs")
            for key in ("curve_D", "curve_C", "curve_L"):
                v = np.asarray(getattr(self, key), dtype=float)
                put(self, key, v)
                if v.shape != (m,) or not np.all(np.isfinite(v) & (v > 0)):
                    raise FitError(f"observations: {key} must be {m} finite positive values like curve_run")

    @property
    def has_curves(self) -> bool:
        return self.curve_run is not None and self.curve_run.size > 0


@dataclass(frozen=True)
class Points:
    """The distinct trained configurations, in canonical order; every analysis fits these.

    N, D, C, L (m,): a replicated configuration's L is the mean of its runs' losses; k (m,) its runs.
    budget (m,) labels or None. runs: the kept runs (indices into the sorted observations), and
    point (n_kept,) which point each belongs to. duplicates: (run_id, run_id it duplicates).
    rep_ss, rep_dof: sum of squared deviations of log L from their point's mean, and its degrees of
    freedom (runs - points over the replicated points): the seed-noise estimate's ingredients.
    """

    obs: Observations  # canonically sorted, duplicates still in
    runs: np.ndarray
    point: np.ndarray
    N: np.ndarray
    D: np.ndarray
    C: np.ndarray
    L: np.ndarray
    k: np.ndarray
    budget: np.ndarray | None
    duplicates: tuple[tuple[str, str], ...]
    rep_ss: float
    rep_dof: int

    @property
    def size(self) -> int:
        return int(self.N.size)

    @property
    def run_ids(self) -> tuple[tuple[str, ...], ...]:
        """The run ids behind each point."""
        ids = self.obs.run_id[self.runs]
        return tuple(tuple(ids[self.point == j]) for j in range(self.size))


def sort_observations(obs: Observations) -> Observations:
    """The same runs in canonical order (run id, seed, N, D, C, L), training curves re-indexed."""
    seed = obs.seed if obs.seed is not None else np.full(obs.run_id.size, "")
    order = np.lexsort((obs.L, obs.C, obs.D, obs.N, seed, obs.run_id))
    where = np.empty_like(order)
    where[order] = np.arange(order.size)
    fields = {key: getattr(obs, key)[order] for key in ("run_id", "N", "D", "C", "L")}
    for key in ("budget", "seed", "L_se"):
        v = getattr(obs, key)
        fields[key] = None if v is None else v[order]
    curves = {}
    if obs.has_curves:
        run = where[obs.curve_run]
        c_order = np.lexsort((obs.curve_L, obs.curve_D, run))
        curves = {
            "curve_run": run[c_order],
            "curve_D": obs.curve_D[c_order],
            "curve_C": obs.curve_C[c_order],
            "curve_L": obs.curve_L[c_order],
        }
    return Observations(
        **fields, **curves, design=obs.design, params=obs.params, flops=obs.flops, notes=obs.notes
    )


def _codes(*columns: np.ndarray) -> np.ndarray:
    """(n,) an integer per distinct row of the columns (equal rows, equal codes)."""
    table = np.column_stack([np.unique(c, return_inverse=True)[1].ravel() for c in columns])
    return np.unique(table, axis=0, return_inverse=True)[1].ravel()


def prepare_points(obs: Observations) -> Points:
    """Canonical order, duplicates counted once, replicates averaged (see the module docstring)."""
    obs = sort_observations(obs)
    n = obs.run_id.size
    blank = np.full(n, "")
    budget = obs.budget if obs.budget is not None else blank
    seed = obs.seed if obs.seed is not None else blank
    same_run = _codes(obs.run_id)
    same_row = _codes(obs.N, obs.D, obs.C, obs.L, seed, budget)
    runs = np.arange(n)
    duplicates = []
    for codes in (same_run, same_row):
        _, first, inverse = np.unique(codes[runs], return_index=True, return_inverse=True)
        original = runs[first][inverse.ravel()]
        duplicates += [
            (str(obs.run_id[i]), str(obs.run_id[j])) for i, j in zip(runs, original, strict=True) if i != j
        ]
        runs = np.sort(runs[first])
    config = _codes(obs.N[runs], obs.D[runs], budget[runs])
    m = int(config.max()) + 1
    first = np.array([runs[np.flatnonzero(config == j)[0]] for j in range(m)])
    order = np.argsort(first, kind="stable")  # points numbered in the runs' canonical order
    point = np.argsort(order)[config]
    k = np.bincount(point, minlength=m).astype(float)
    L = np.bincount(point, weights=obs.L[runs], minlength=m) / k
    logL = np.log(obs.L[runs])
    mean_log = np.bincount(point, weights=logL, minlength=m) / k
    rep_ss = float(np.sum((logL - mean_log[point]) ** 2))
    rep_dof = int(runs.size - m)
    pick = first[order]
    return Points(
        obs=obs,
        runs=runs,
        point=point,
        N=obs.N[pick],
        D=obs.D[pick],
        C=np.exp(np.bincount(point, weights=np.log(obs.C[runs]), minlength=m) / k),
        L=L,
        k=k,
        budget=None if obs.budget is None else obs.budget[pick],
        duplicates=tuple(duplicates),
        rep_ss=rep_ss,
        rep_dof=rep_dof,
    )
