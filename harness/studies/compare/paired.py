"""A variant against the reference, budget by budget: paired log-loss differences and what they say.

Symbols: b a shared compute budget, s a seed, C compute (FLOPs), L validation loss (nats/token),
d = ln L_variant - ln L_reference (a 1% higher loss is d ~ +0.01), x = ln C - ln C_mid with C_mid the
geometric middle of the shared budgets.

Each variant's runs are reduced, seed by seed, to one point per compute budget (runs within
BUDGET_RTOL of a budget's cheapest run form one budget, as IsoFLOP sizes do, and its best run stands
for it). A difference pairs the reference's run of budget b and seed s with the variant's loss at the
same compute and seed, read off the variant's own points by log-log interpolation (exact where the
designs share budgets; up to BUDGET_RTOL of extrapolation at the ends). Every budget and seed enters:
no envelope drops the runs an ingredient damages.

Noise comes from replicate seeds, and it has two parts: a seed's effect shared by all its budgets
(within one seed, every run sees the same data stream) and each run's own. From the differences:
    offset   the mean ln-loss ratio over budgets and seeds: the ratio at C_mid (the budgets' geometric
             mean compute) on the line fitted through the budgets
    slope    d ln(L_v / L_ref) / d ln C of that line: the change of the frontier's exponent (for
             E = 0 laws; positive: the variant's loss falls more slowly)
    top      the mean difference at the largest shared budget, where scale matters most
    lack of fit   F test of the line against the budgets' means
Intervals use Student's t (`paired_test` gives each error and its degrees of freedom).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.fit import FitError
from harness.stats import Pairs

BUDGET_RTOL = 0.10  # runs within 10% of a budget's cheapest run share it; interpolation reach at the ends


@dataclass(frozen=True)
class Curve:
    """One variant's runs, seed by seed: per budget (ascending compute) its compute, loss and epochs."""

    name: str
    seeds: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # seed -> (C, L, epochs)


def budget_points(C: np.ndarray, L: np.ndarray, epochs: np.ndarray) -> tuple[np.ndarray, ...]:
    """One seed's runs -> one point per budget, ascending: runs within BUDGET_RTOL of a budget's cheapest
    run are one budget, and its best (lowest-loss) run stands for it."""
    order = np.argsort(C, kind="stable")
    C, L, epochs = C[order], L[order], epochs[order]
    keep, start, best = [], -math.inf, -1
    for i, c in enumerate(C):
        if c > start * (1 + BUDGET_RTOL):
            keep.append(i)
            start, best = c, len(keep) - 1
        elif L[i] < L[keep[best]]:
            keep[best] = i
    idx = np.array(keep, dtype=int)
    return C[idx], L[idx], epochs[idx]


def curve_from_rows(name: str, rows: list[dict], c_col: str = "flops") -> Curve:
    """A variant's Curve from its result rows (results.csv: status, val_loss, `c_col`, seed, epochs;
    numbers may be strings). Rows not done are left out; FitError when none is left."""
    by_seed: dict[int, list[tuple[float, float, float]]] = {}
    for i, row in enumerate(rows, 1):
        if str(row.get("status") or "done") != "done":
            continue
        try:
            C, L = float(row[c_col]), float(row["val_loss"])
            seed = int(float(row.get("seed") or 0))
            ep = float(row.get("epochs") or 0)
        except (KeyError, TypeError, ValueError) as exc:
            raise FitError(
                f"{name}: row {i}: {c_col}, val_loss, seed and epochs must be numbers ({exc})"
            ) from None
        if C > 0 and L > 0 and math.isfinite(L):
            by_seed.setdefault(seed, []).append((C, L, ep))
    if not by_seed:
        raise FitError(f"{name}: no finished runs")
    return Curve(name, {s: budget_points(*np.array(v).T) for s, v in sorted(by_seed.items())})


def interp_loglog(x: np.ndarray, xp: np.ndarray, yp: np.ndarray, reach: float = BUDGET_RTOL) -> np.ndarray:
    """y at x on the piecewise power law through (xp, yp) (xp ascending): linear in log-log, extended
    along the end segments up to a factor 1 + reach beyond the ends, nan further out."""
    lx, lxp, lyp = np.log(x), np.log(xp), np.log(yp)
    out = np.interp(lx, lxp, lyp)
    if xp.size >= 2:
        lo, hi = lx < lxp[0], lx > lxp[-1]
        out[lo] = lyp[0] + (lx[lo] - lxp[0]) * (lyp[1] - lyp[0]) / (lxp[1] - lxp[0])
        out[hi] = lyp[-1] + (lx[hi] - lxp[-1]) * (lyp[-1] - lyp[-2]) / (lxp[-1] - lxp[-2])
    far = (lx < lxp[0] - math.log1p(reach)) | (lx > lxp[-1] + math.log1p(reach))
    out[far] = np.nan
    return np.exp(out)


def pair_runs(ref: Curve, var: Curve) -> Pairs:
    """Differences at every reference budget and seed the variant also trained (module docstring);
    only budgets that every shared seed reached are kept, so that seeds compare like with like."""
    all_C = np.sort(np.concatenate([c for c, _, _ in ref.seeds.values()]))
    budget_C = budget_points(all_C, np.ones_like(all_C), np.zeros_like(all_C))[0]
    seeds = np.array(sorted(set(ref.seeds) & set(var.seeds)), dtype=int)
    d = np.full((budget_C.size, seeds.size), np.nan)
    epochs = np.zeros(budget_C.size)
    for j, s in enumerate(seeds):
        (Cr, Lr, _), (Cv, Lv, Ev) = ref.seeds[s], var.seeds[s]
        b = np.searchsorted(budget_C * (1 + BUDGET_RTOL), Cr)
        d[b, j] = np.log(interp_loglog(Cr, Cv, Lv) / Lr)
        epochs[b] = np.interp(np.log(Cr), np.log(Cv), Ev)
    reached = np.isfinite(d).any(axis=1)
    keep = np.isfinite(d).all(axis=1) & reached
    if seeds.size == 0 or not keep.any():
        raise FitError(f"{var.name}: no budget and seed shared with the reference {ref.name}")
    return Pairs(budget_C[keep], seeds, d[keep], epochs[keep], int(reached.sum() - keep.sum()))


