"""One bootstrap for fit and compare: a variant's frontier intervals in comparison.json are the ones in its
own fit.json (issue 12: compare used to re-implement the bootstrap; nothing checked that they agreed)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from harness import store
from harness.config import FitConfig
from harness.fit import LossSurface
from harness.fit.simulate import ladder_observations
from harness.report import analyse
from harness.studies.compare import compare_dir

CFG = FitConfig(bootstrap=60, calibration_draws=0)


def write_variant(exp: Path, name: str, surface: LossSurface, seed: int) -> None:
    obs = ladder_observations(
        surface, np.logspace(10, 12, 7), k=7.0, noise=0.005, rng=np.random.default_rng(seed)
    )
    rows = [
        {
            "run_id": f"{name}{i}",
            "status": "done",
            "params_total": repr(float(obs.N[i])),
            "tokens": repr(float(obs.D[i])),
            "flops": repr(float(obs.C[i])),
            "budget": str(obs.budget[i]),
            "val_loss": repr(float(obs.L[i])),
        }
        for i in range(obs.N.size)
    ]
    sweep = exp / name
    store.write_results_table(sweep, rows)
    store.write_json(
        sweep / store.SWEEP_JSON, {"config": {"fit": asdict(CFG), "sweep": {"design": "isoflop"}}}
    )
    analyse(store.read_results_table(sweep), CFG, sweep, design="isoflop")


def test_comparison_intervals_are_the_fit_json_intervals(tmp_path: Path) -> None:
    write_variant(tmp_path, "base", LossSurface(E=0.0, A=13.3, B=34.8, alpha=0.28, beta=0.28), seed=0)
    write_variant(tmp_path, "other", LossSurface(E=0.5, A=13.3, B=34.8, alpha=0.3, beta=0.3), seed=1)
    compare_dir(tmp_path, reference="base")
    rows = {r["variant"]: r for r in json.loads((tmp_path / "comparison.json").read_text())["frontiers"]}
    for name in ("base", "other"):
        front = json.loads((tmp_path / name / "fit.json").read_text())["frontier"]
        assert rows[name]["alpha"] == pytest.approx(front["alpha"], rel=1e-9)
        assert rows[name]["alpha_ci"] == pytest.approx(front["ci"]["alpha"], rel=1e-9)
        assert rows[name]["E_ci"] == pytest.approx(front["ci"]["E"], rel=1e-9, abs=1e-12)
