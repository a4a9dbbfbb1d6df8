"""The verdict's error rates on simulated sweeps of the sweep's own design (fit.json's `calibration`), and
the verdict they let stand: an answer the design cannot support is "untested"."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from harness.config import FitConfig
from harness.fit import LossSurface, fit_sweep
from harness.fit.calibration import make_truths
from harness.fit.rules import FitRules
from harness.fit.simulate import grid_observations, ladder_observations
from harness.fit.verdict import likelihood_ratios

# a surface at the cpu sweep's scale: L ~ 2.3 nats at 1e10 FLOPs, 1.2 at 1e12, alpha_C = 0.14
REFERENCE = LossSurface(E=0.0, A=13.3, B=34.8, alpha=0.28, beta=0.28)
DENSE = 1e10 * 10 ** (np.arange(9) / 4)  # 9 budgets over 2 decades, a quarter decade apart


def _dense(noise: float):
    obs = ladder_observations(REFERENCE, DENSE, k=7.0)
    return dataclasses.replace(obs, seed=None, L_se=noise * obs.L)


@pytest.fixture(scope="module")
def dense_report():
    return fit_sweep(_dense(0.005), FitConfig(bootstrap=20, calibration_draws=200))


def test_calibration_meets_the_targets_on_a_dense_design(dense_report) -> None:
    """At 0.5% noise (issue 14's target) on 9 budgets: false "no" <= 5%, false "yes" <= 10% (docs/fit.md)."""
    c = dense_report.calibration
    assert c.noise == pytest.approx(0.005) and c.noise_source == "val_loss_se" and c.draws == 200
    assert c.false_no <= 0.06 and c.false_yes <= 0.10  # 0.06: 200 draws per law leave +-1.5% of noise
    assert set(c.yes_rate) == {"smooth_no_floor", "smooth_floor", "broken", "plateau", "bump"}
    d = dense_report.to_dict()["calibration"]
    assert d["false_no"] == c.false_no and d["truths"]["broken"]["smooth"] is False


def test_calibration_is_reproducible_and_can_be_switched_off() -> None:
    cfg = FitConfig(bootstrap=0, calibration_draws=50)
    a, b = fit_sweep(_dense(0.01), cfg).calibration, fit_sweep(_dense(0.01), cfg).calibration
    assert a == b
    off = fit_sweep(_dense(0.01), dataclasses.replace(cfg, calibration_draws=0))
    assert off.calibration is None and off.to_dict()["calibration"] is None
    assert "calibration_draws is 0" in off.skipped["calibration"]


def test_five_budgets_cannot_test_the_verdict() -> None:
    """The old cpu default's 5 budgets: holding out 2 leaves 3, too few to fit the offset law, so every
    simulated sweep is 'untested' and the calibration says so: no smooth sweep can be judged smooth."""
    obs = ladder_observations(REFERENCE, np.logspace(10, 12, 5), k=7.0)
    r = fit_sweep(dataclasses.replace(obs, L_se=0.005 * obs.L), FitConfig(bootstrap=0, calibration_draws=50))
    assert r.verdict.outcome == "untested" and r.calibration.false_no == 1.0


def test_an_exactly_smooth_law_at_3pct_noise_is_rarely_judged_no() -> None:
    """Issue 13: at 3% noise an exactly smooth law was judged "no" 27% of the time (22 of 100 sweeps of
    9 budgets with the old checks); checks in noise units keep that near their 5% design rate."""
    r = fit_sweep(_dense(0.03), FitConfig(bootstrap=0, calibration_draws=200))
    assert r.calibration.false_no <= 0.08


def test_likelihood_ratios_of_each_answer() -> None:
    """yes: P(yes | smooth) / P(yes | bent); no: P(no | bent) / P(no | smooth); inf when only the named
    laws give the answer, nan when no law does."""
    lr = likelihood_ratios(false_no=0.2, false_yes=0.1)
    assert lr["yes"] == pytest.approx(0.8 / 0.1) and lr["no"] == pytest.approx(0.9 / 0.2)
    assert likelihood_ratios(0.0, 0.5)["no"] == math.inf and math.isnan(likelihood_ratios(1.0, 0.0)["yes"])


def _bent(obs, noise: float):
    """obs with the plateau truth of the calibration (the frontier flat over the top third of log C)."""
    (plateau,) = [t for t in make_truths(obs.N, obs.D, obs.C, REFERENCE, REFERENCE) if t.name == "plateau"]
    return dataclasses.replace(obs, L=plateau.L, L_se=noise * plateau.L)


def test_a_design_that_can_tell_keeps_its_answers(dense_report) -> None:
    """The dense design at 0.5% noise (LR yes 580, no 31 in docs/fit.md): a smooth law is judged yes and
    a plateau no, both standing, with their likelihood ratios in fit.json."""
    v = dense_report.verdict
    assert v.outcome == v.checked == "yes" and v.likelihood_ratio >= 10 and not v.untested_why
    bent = fit_sweep(_bent(_dense(0.005), 0.005), FitConfig(bootstrap=0, calibration_draws=200))
    b = bent.verdict
    assert b.outcome == b.checked == "no" and b.likelihood_ratio >= 10
    d = bent.to_dict()["verdict"]
    assert d["checked"] == "no" and d["untested_why"] == "" and d["rules"]["min_likelihood_ratio"] == 3.0


@pytest.mark.parametrize("truth", ["smooth", "plateau"])
def test_a_design_that_cannot_tell_is_untested_with_its_rates(truth: str) -> None:
    """The smoke preset's 3x3 grid (LR of either answer 1.0-2.5 at 0.5-4% noise): whatever its checks say
    about a smooth law or a plateau, the verdict is untested, and says with which error rates."""
    obs = grid_observations(REFERENCE, [4e3, 1.6e4, 3.6e4], [16384, 32768, 65536], k=7.0)
    obs = dataclasses.replace(obs, L_se=0.02 * obs.L) if truth == "smooth" else _bent(obs, 0.02)
    r = fit_sweep(obs, FitConfig(bootstrap=0, calibration_draws=200))
    v, c = r.verdict, r.calibration
    assert v.outcome == "untested" and v.checked in ("yes", "no") and v.likelihood_ratio < 3
    assert v.likelihood_ratio == pytest.approx(likelihood_ratios(c.false_no, c.false_yes)[v.checked])
    assert v.untested_why.startswith("this design cannot tell: at 2.00% noise its checks say")
    assert v.sentence.startswith(f"loss scales smoothly with compute: untested, because {v.untested_why}")
    assert r.to_dict()["verdict"]["outcome"] == "untested"


def test_unweighed_without_a_calibration_and_a_ratio_below_1_refused() -> None:
    """fit.calibration_draws=0: the grid's checks stand as they are, with no ratio; a rule asking a ratio
    below 1 (an answer likelier from the laws it denies) is refused."""
    obs = grid_observations(REFERENCE, [4e3, 1.6e4, 3.6e4], [16384, 32768, 65536], k=7.0)
    r = fit_sweep(dataclasses.replace(obs, L_se=0.02 * obs.L), FitConfig(bootstrap=0, calibration_draws=0))
    assert r.verdict.outcome == r.verdict.checked != "untested" and r.verdict.likelihood_ratio is None
    with pytest.raises(ValueError, match=r"^min_likelihood_ratio: must be a finite number >= 1, got 0.5$"):
        FitRules(min_likelihood_ratio=0.5)
