"""Budgets: which points share a compute (IsoFLOP) or token (grid) budget, declared or guessed.

A sweep declares its design in sweep.json (grid | isoflop | paired) and labels each run with its
budget (results.csv's `budget` column): those decide. Only input without a declared design (an
external CSV) has its design guessed, from the points (replicates and duplicates already merged, so
neither can make a grid look like IsoFLOP budgets):
    labels given: IsoFLOP when every label's compute agrees within 25% and its points hold 2 or more
                  sizes on average;
    no labels:    points sorted by compute join a group while within 10% of its cheapest point;
                  IsoFLOP when the groups hold 2 or more sizes on average, else the points are binned
                  into 3-8 equal-width bins of log C (used by the monotonicity check only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ISOFLOP_SPREAD = 1.25  # a budget label is an IsoFLOP group when its points' compute agrees within 25%
CLUSTER_RTOL = 0.10  # unlabelled points within 10% of a group's cheapest point share a compute budget
MIN_SIZES = 2.0  # an IsoFLOP design has at least this many sizes per budget on average


@dataclass(frozen=True)
class Budgets:
    """The points grouped into budgets, numbered by increasing compute."""

    ids: np.ndarray  # (m,) group of each point
    labels: tuple[str, ...]  # (k,) name of each group
    C: np.ndarray  # (k,) geometric mean compute of each group's points, FLOPs
    isoflop: bool  # each group shares one compute budget (IsoFLOP design), not e.g. one token budget
    rule: str  # how the groups were formed, as a sentence
    declared: bool  # the design came from the sweep's own records, not guessed

    def members(self, g: int) -> np.ndarray:
        return np.flatnonzero(self.ids == g)


def _mean_sizes(raw: np.ndarray, N: np.ndarray) -> float:
    return float(np.mean([np.unique(N[raw == g]).size for g in np.unique(raw)]))


def _cluster(C: np.ndarray) -> np.ndarray:
    order = np.argsort(C, kind="stable")
    raw = np.empty(C.size, dtype=int)
    g, start = 0, C[order[0]]
    for i in order:
        if C[i] > start * (1 + CLUSTER_RTOL):
            g, start = g + 1, C[i]
        raw[i] = g
    return raw


def group_budgets(
    C: np.ndarray, N: np.ndarray, budget: np.ndarray | None = None, design: str | None = None
) -> Budgets:
    """Group points into budgets by the declared design and labels, else by the guess of the docstring."""
    C, N = np.asarray(C, dtype=float), np.asarray(N, dtype=float)
    names = raw = None
    if budget is not None:
        names, raw = np.unique(np.asarray(budget).astype(str), return_inverse=True)
        raw = raw.ravel()
    if design is not None:
        isoflop = design == "isoflop"
        if raw is None and isoflop:
            raw = _cluster(C)
        rule = f"declared by the sweep: {design} design"
    elif raw is not None:
        spread = max(C[raw == g].max() / C[raw == g].min() for g in range(names.size))
        sizes = _mean_sizes(raw, N)
        isoflop = spread <= ISOFLOP_SPREAD and sizes >= MIN_SIZES
        rule = (
            f"no declared design: by the budget labels ({names.size}; compute within x{spread:.3g} and "
            f"{sizes:.3g} sizes per label on average: " + ("IsoFLOP budgets)" if isoflop else "not IsoFLOP)")
        )
    else:
        raw = _cluster(C)
        sizes = _mean_sizes(raw, N)
        isoflop = sizes >= MIN_SIZES
        rule = (
            f"no declared design or labels: points within {CLUSTER_RTOL:.0%} of a group's cheapest share a "
            f"compute budget ({sizes:.3g} sizes per group on average: "
            + ("IsoFLOP budgets)" if isoflop else "not IsoFLOP)")
        )
        if not isoflop:
            raw = None
    if raw is None:
        nb = int(min(8, max(3, round(np.sqrt(C.size)))))
        edges = np.linspace(np.log(C).min(), np.log(C).max(), nb + 1)
        raw = np.clip(np.searchsorted(edges, np.log(C), side="right") - 1, 0, nb - 1)
        rule += f"; no budget groups, so the points are binned into {nb} bins of log C"
    what = "compute" if isoflop else "token" if names is not None else "log C"
    rule += f"; {np.unique(raw).size} {what} budgets"
    return _numbered(raw, names, C, bool(isoflop), rule, design is not None)


def _label(name: str) -> str:
    """A numeric budget label as 3 significant digits (562000000000.0 -> 5.62e+11); others as given."""
    try:
        return f"{float(name):.3g}"
    except ValueError:
        return name


def _numbered(raw, names, C, isoflop, rule, declared) -> Budgets:
    """Groups renumbered by increasing mean log C, labelled by their names or their compute."""
    logC = np.log(C)
    present = np.unique(raw)
    mean_logC = np.array([logC[raw == g].mean() for g in present])
    order = np.lexsort((present, mean_logC))
    remap = np.empty(raw.max() + 1, dtype=int)
    remap[present[order]] = np.arange(present.size)
    Cg = np.exp(mean_logC[order])
    labels = tuple(
        _label(str(names[present[j]])) if names is not None else f"C~{Cg[i]:.2e}" for i, j in enumerate(order)
    )
    return Budgets(ids=remap[raw], labels=labels, C=Cg, isoflop=isoflop, rule=rule, declared=declared)
