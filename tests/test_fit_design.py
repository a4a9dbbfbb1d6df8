"""The design comes from the sweep's records, duplicates count once, replicates become noise, and no result
depends on the order of the rows (issue 13, "Design guessed from the data"; "tied losses broken by row
order"; "duplicate runs bootstrapped as independent"). Through `analyse`, as the sweep and refit call it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from harness.config import FitConfig
from harness.fit import LossSurface, Observations
from harness.fit.budgets import group_budgets
from harness.fit.simulate import grid_observations, isoflop_observations
from harness.report import analyse

SURFACE = LossSurface(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
CFG = FitConfig(bootstrap=40, calibration_draws=10)


def rows_of(obs: Observations, *, budget: bool = True) -> list[dict]:
    """results.csv rows (strings, as read back) of synthetic observations."""
    rows = []
    for i in range(obs.run_id.size):
        row = {
            "run_id": str(obs.run_id[i]),
            "status": "done",
            "params_total": repr(float(obs.N[i])),
            "tokens": repr(float(obs.D[i])),
            "flops": repr(float(obs.C[i])),
            "val_loss": repr(float(obs.L[i])),
        }
        if budget and obs.budget is not None:
            row["budget"] = str(obs.budget[i])
        rows.append(row)
    return rows


def fit_json(rows: list[dict], out: Path, **kwargs) -> dict:
    analyse(rows, kwargs.pop("cfg", CFG), out, **kwargs)
    return json.loads((out / "fit.json").read_text())


def without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


@pytest.fixture(scope="module")
def grid() -> Observations:
    return grid_observations(
        SURFACE, np.logspace(6, 9, 5), np.logspace(8, 11, 4), noise=0.01, rng=np.random.default_rng(0)
    )


def test_duplicated_rows_do_not_turn_a_grid_into_isoflop_budgets(grid, tmp_path) -> None:
    """Unlabelled grid rows written twice: the old guess saw clusters of 2 runs per compute and called
    the grid IsoFLOP budgets, which changed the frontier and the hold-out."""
    rows = rows_of(grid, budget=False)
    once = fit_json(rows, tmp_path / "once")
    twice = fit_json(rows + [dict(r) for r in rows], tmp_path / "twice")
    assert once["budgets"]["isoflop"] is False and twice["budgets"]["isoflop"] is False
    assert len(twice["design"]["duplicates"]) == len(rows) and twice["design"]["n_points"] == len(rows)
    for key in ("frontier", "holdout", "verdict", "parametric", "noise"):
        assert twice[key] == once[key], key


def test_exact_copies_under_other_run_ids_count_once(grid, tmp_path) -> None:
    rows = rows_of(grid)
    copies = [{**r, "run_id": r["run_id"] + "-copy"} for r in rows[:6]]
    once = fit_json(rows, tmp_path / "once")
    more = fit_json(rows + copies, tmp_path / "more")
    assert {d["run_id"] for d in more["design"]["duplicates"]} == {r["run_id"] for r in copies}
    assert more["frontier"]["ci"] == once["frontier"]["ci"]  # not bootstrapped as independent runs


def test_the_declared_design_decides(tmp_path) -> None:
    """A square grid's anti-diagonals share compute, so a guess takes them for IsoFLOP budgets; the
    sweep's own record (sweep.json's design) says grid."""
    square = grid_observations(SURFACE, np.logspace(6, 9, 5), np.logspace(8, 11, 5))
    assert group_budgets(square.C, square.N).isoflop  # the guess (fallback for foreign tables)
    declared = fit_json(rows_of(square, budget=False), tmp_path, design="grid")
    assert declared["budgets"]["isoflop"] is False and declared["design"]["declared"] is True
    assert declared["isoflop"] is None and "compute budgets" in declared["skipped"]["isoflop"]


def test_replicate_seeds_are_averaged_and_measure_the_noise(tmp_path) -> None:
    obs = isoflop_observations(SURFACE, np.logspace(16, 19, 7), sizes=7, span=4.0)
    rng = np.random.default_rng(1)
    rows = rows_of(obs)
    for r in rows:
        r["seed"] = "0"
    reps = []
    for r in rows[::3]:  # a third of the configurations, 4 more seeds each
        for seed in range(1, 5):
            reps.append({**r, "run_id": f"{r['run_id']}-s{seed}", "seed": str(seed)})
    for r in rows + reps:
        r["val_loss"] = repr(float(r["val_loss"]) * float(np.exp(0.01 * rng.standard_normal())))
    fit = fit_json(rows + reps, tmp_path, design="isoflop")
    assert fit["design"]["n_points"] == obs.N.size and fit["design"]["replicated_points"] == len(rows[::3])
    assert fit["noise"]["source"] == "seeds" and 0.007 < fit["noise"]["level"] < 0.013
    assert fit["noise"]["dof"] == len(reps)


def test_results_do_not_depend_on_row_order(tmp_path) -> None:
    obs = isoflop_observations(
        SURFACE, np.logspace(16, 19, 6), sizes=6, noise=0.01, rng=np.random.default_rng(2)
    )
    rows = rows_of(obs)
    rows[7]["val_loss"] = rows[8]["val_loss"]  # a tie in one budget: broken the same way in any order
    rows.append({**rows[3], "run_id": "dup"})  # and a duplicate, whichever comes first
    shuffled = list(rows)
    random.Random(0).shuffle(shuffled)
    a = fit_json(rows, tmp_path / "a", design="isoflop", meta={"order": "as written"})
    b = fit_json(shuffled, tmp_path / "b", design="isoflop", meta={"order": "shuffled"})
    assert without(a, "meta") == without(b, "meta")
