"""scripts/interval_coverage.py: the Birge scaling it tests, and its truths and coverage on a simulated
sweep whose floor is known (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config import FitConfig
from harness.fit import LossSurface, power_law_values
from harness.fit.engine import evaluate_rows
from harness.fit.prepare import prepare_fit
from harness.fit.synthetic import ladder_observations
from tests.conftest import load_script

coverage_script = load_script("interval_coverage")
FLOOR = 0.5


def test_birge_scale_widens_each_half_by_the_misfit_only_above_one() -> None:
    scale = coverage_script.birge_scale
    assert scale(0.5, (0.45, 0.52), 2.0) == pytest.approx((0.40, 0.54))
    assert scale(0.5, (0.45, 0.52), 0.7) == pytest.approx((0.45, 0.52))  # never narrowed
    assert scale(0.1, (0.05, 0.2), 3.0) == pytest.approx((0.0, 0.4))  # E's lower end kept at 0
    assert scale(0.5, (0.45, 0.52), float("nan")) == pytest.approx((0.45, 0.52))


@pytest.fixture(scope="module")
def prep():
    surface = LossSurface(E=FLOOR, A=400.0, B=60.0, alpha=0.5, beta=0.4)
    budgets = np.logspace(10, 12, 9)
    obs = ladder_observations(
        surface, budgets, sizes=6, replicate=(2, 6), noise=0.005, rng=np.random.default_rng(3)
    )
    return prepare_fit(obs, FitConfig(), bayes_loss=FLOOR)


def test_both_truths_lie_above_the_floor_and_the_exact_one_returns_it(prep) -> None:
    truths = coverage_script.truths(prep, FLOOR)
    for name, L in truths.items():
        assert np.all(L > FLOOR), name
        rows = evaluate_rows(prep.design, L[None, :])
        floor_fit = rows.frontier_fit[0][0, 0]
        assert rows.frontier_fit[1][0]
        if name == "exact":  # an exact offset power law on the frontier: its floor comes back
            assert floor_fit == pytest.approx(FLOOR, abs=0.01)
            fit = power_law_values(rows.frontier_fit[0][:1], rows.frontier.x)[0]
            assert np.max(np.abs(np.log(rows.frontier.Y[0] / fit))) < 0.01


def test_coverage_reports_shares_and_scaling_never_narrows(prep) -> None:
    L = coverage_script.truths(prep, FLOOR)["exact"]
    c = coverage_script.coverage(prep, L, FLOOR, 12, 60, 0.95, np.random.default_rng(0))
    assert c["fitted"] == 1.0
    for key in ("cover", "cover_scaled", "excl0", "excl0_scaled"):
        assert 0.0 <= c[key] <= 1.0
    assert c["cover_scaled"] >= c["cover"] and c["width_ratio"] >= 1.0
    assert c["cover"] >= 0.5 and abs(c["bias"]) < 0.02  # the floor is recovered on the exact truth
