"""Result rows (dicts as read from results.csv or collected by the sweep; numbers may be strings) ->
`harness.fit.Observations` under the conventions FitConfig names, with the rows excluded and why.

Only rows with status 'done' (or no status) are fitted; the others are listed as excluded with why.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.config import FitConfig
from harness.fit import FitError, Observations

MAX_EPOCHS = 4  # beyond ~4 passes over the data, repeated tokens stop counting as fresh (Muennighoff 2023)
PARAM_COLUMNS = {"total": "params_total", "nonembedding": "params_nonembedding"}
FLOP_COLUMNS = {"full": "flops", "6n": "flops_6n"}


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip() == "")


def _number(row: dict, key: str, where: str) -> float:
    v = row.get(key)
    if _empty(v):
        raise FitError(f"{where}, column {key}: empty")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise FitError(f"{where}, column {key}: {v!r} is not a number") from None
    if x <= 0:  # nan passes: a diverged run's loss, excluded by the caller
        raise FitError(f"{where}, column {key}: {v!r} must be > 0")
    return x


def _optional_number(v: Any) -> float | None:
    """A number, or None when empty or not a number (an optional column)."""
    try:
        return None if _empty(v) else float(v)
    except (TypeError, ValueError):
        return None


def build_observations(
    rows: list[dict],
    cfg: FitConfig,
    *,
    curves: dict[str, list[dict]] | None = None,
    design: str | None = None,
) -> tuple[Observations, list[tuple[str, str]], list[str]]:
    """Observations of the fitted rows, (run_id, why) of the excluded ones, and warnings.

    Optional columns: budget (the design's budget label), seed (replicates of one configuration)
    and val_loss_se; design: the sweep's declared design (sweep.json), None for a foreign table.

    Rows are numbered from 1 in messages (the first row after a CSV's header is row 1). Raises
    FitError naming row and column for a value that is missing, not a number, or not positive in a
    row that would be fitted; a non-finite val_loss (a diverged run) excludes the row instead.
    """
    n_col = PARAM_COLUMNS[cfg.params]
    c_col = FLOP_COLUMNS[cfg.flops]
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    missing = [k for k in (n_col, "tokens", "val_loss") if k not in keys]
    if missing:
        raise FitError(f"missing columns: {', '.join(missing)}")
    fitted, excluded = _select(rows)
    use_6nd = any(_empty(row.get(c_col)) for _, row, _ in fitted)
    points, warnings = [], []
    for i, row, rid in fitted:
        point = _parse(i, row, rid, n_col, None if use_6nd else c_col)
        if point is None:
            excluded.append((rid, f"val_loss is {row.get('val_loss')} (diverged?)"))
            continue
        points.append(point)
        warnings += _repeat_warning(rid, row.get("epochs"))
    ids, N, D, C, L, budget, seed, se = (
        (list(col) for col in zip(*points, strict=True)) if points else [[]] * 8
    )
    notes = []
    if use_6nd:
        notes.append(
            f"C = 6 N D: column {c_col} (fit.flops={cfg.flops}) is missing, so compute follows Kaplan's count"
        )
    curve = _curves(curves, ids, N, None if use_6nd else c_col)
    obs = Observations(
        run_id=np.array(ids, dtype=str),
        N=np.array(N, dtype=float),
        D=np.array(D, dtype=float),
        C=np.array(C, dtype=float),
        L=np.array(L, dtype=float),
        budget=None if any(_empty(b) for b in budget) else np.array([str(b) for b in budget]),
        seed=None if all(_empty(v) for v in seed) else np.array(["" if _empty(v) else str(v) for v in seed]),
        L_se=None if all(v is None for v in se) else np.array([np.nan if v is None else v for v in se]),
        design=design,
        curve_run=curve[0],
        curve_D=curve[1],
        curve_C=curve[2],
        curve_L=curve[3],
        params=cfg.params,
        flops="6n" if use_6nd else cfg.flops,
        notes=tuple(notes),
    )
    return obs, excluded, warnings


def _select(rows: list[dict]) -> tuple[list[tuple[int, dict, str]], list[tuple[str, str]]]:
    """(row number from 1, row, run id) of the rows to fit (status done or none), and the others with why."""
    fitted, excluded = [], []
    for i, row in enumerate(rows, 1):
        rid = str(row.get("run_id") or f"row{i}")
        status = row.get("status")
        if not _empty(status) and str(status) != "done":
            excluded.append((rid, f"status {status}"))
        else:
            fitted.append((i, row, rid))
    return fitted, excluded


def _parse(i: int, row: dict, rid: str, n_col: str, c_col: str | None) -> tuple | None:
    """(run id, N, D, C, L, budget, seed, loss SE) of a row; None for a non-finite loss (diverged).
    c_col None: C = 6 N D."""
    where = f"row {i}" + ("" if _empty(row.get("run_id")) else f" (run {rid})")
    loss = _number(row, "val_loss", where)
    if not math.isfinite(loss):
        return None
    n, d = _number(row, n_col, where), _number(row, "tokens", where)
    c = 6.0 * n * d if c_col is None else _number(row, c_col, where)
    for key, v in ((n_col, n), ("tokens", d), (c_col or "6 N D", c)):
        if not math.isfinite(v):
            raise FitError(f"{where}, column {key}: {v} is not finite")
    return rid, n, d, c, loss, row.get("budget"), row.get("seed"), _optional_number(row.get("val_loss_se"))


def _repeat_warning(rid: str, epochs: Any) -> list[str]:
    """A warning when a run repeated its data more than MAX_EPOCHS times (Muennighoff et al. 2023)."""
    try:
        ep = float(epochs)
    except (TypeError, ValueError):
        return []
    return (
        [f"run {rid} repeated its training data {ep:.3g} times (> {MAX_EPOCHS})"] if ep > MAX_EPOCHS else []
    )


def _curves(
    curves: dict[str, list[dict]] | None, ids: list[str], N: list[float], c_col: str | None
) -> tuple[np.ndarray | None, ...]:
    """(fitted-run index, D, C, L) of every eval of the fitted runs' training curves, or four Nones.
    c_col None (or missing in an eval row): C = 6 N D."""
    cr, cd, cc, cl = [], [], [], []
    for j, rid in enumerate(ids):
        for ev in (curves or {}).get(rid) or []:
            try:
                d, loss = float(ev.get("tokens")), float(ev.get("val/loss"))
                c = 6.0 * N[j] * d if c_col is None or _empty(ev.get(c_col)) else float(ev.get(c_col))
            except (TypeError, ValueError):
                continue  # an eval row without a loss (e.g. a train-only log line)
            if all(math.isfinite(v) and v > 0 for v in (d, loss, c)):
                cr.append(j)
                cd.append(d)
                cc.append(c)
                cl.append(loss)
    if not cr:
        return None, None, None, None
    return np.array(cr, dtype=int), np.array(cd), np.array(cc), np.array(cl)
