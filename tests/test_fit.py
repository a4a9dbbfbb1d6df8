"""The fitter against data drawn from known laws: exact recovery without noise, honest intervals with it,
FitError on degenerate input, and a package that loads without torch or hydra."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.config import FitConfig
from harness.fit import FitError, LossSurface, Observations, PowerLaw, fit_sweep, power_law_values
from harness.fit.budgets import group_budgets
from harness.fit.frontier import (
    envelope_mask,
    fit_frontier,
    fit_kaplan,
    fit_offset_power_law,
    fit_power_law,
    frontier_points,
    offset_power_law_batch,
)
from harness.fit.isoflop import fit_isoflop
from harness.fit.parametric import fit_parametric, refit_parametric
from harness.fit.simulate import grid_observations, isoflop_observations

CHINCHILLA = LossSurface(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
OTHER = LossSurface(E=0.8, A=30.0, B=200.0, alpha=0.25, beta=0.4)
BUDGETS = np.logspace(15, 19, 6)
QUICK = FitConfig(bootstrap=50, calibration_draws=0)


def rel(a: float, b: float) -> float:
    return abs(a / b - 1)


def inside(value: float, ci: tuple[float, float]) -> bool:
    return ci[0] <= value <= ci[1]


def test_fit_loads_neither_torch_nor_hydra() -> None:
    """harness.fit loads without torch, hydra, plotting or W&B, so a fit can be redone on a laptop."""
    mods = ("torch", "hydra", "omegaconf", "matplotlib", "wandb")
    code = f"import sys, harness.fit; print([m for m in {mods!r} if m in sys.modules])"
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------- laws


def test_closed_forms() -> None:
    s = CHINCHILLA
    assert s.a + s.b == pytest.approx(1.0)
    C = np.array([1e18, 1e21])
    assert np.allclose(6 * s.N_opt(C) * s.D_opt(C), C)  # the allocation spends exactly C
    N = s.N_opt(1e20) * np.array([0.9, 1.0, 1.1])
    L = s.loss(N, 1e20 / (6 * N))
    assert L[1] < L[0] and L[1] < L[2]
    assert PowerLaw(1.0, 1e10, 0.5)(1e10) == pytest.approx(2.0)


def test_the_law_evaluator_does_not_overflow() -> None:
    """(C0/C)^alpha overflows in the ratio before the power brings it down; the exp/log form does not."""
    with np.errstate(over="ignore"):
        assert np.isinf(np.float64(1e300) / 1e-20)  # the naive form's ratio
    out = power_law_values(np.array([[0.0, 1e300, 0.5], [0.5, 1e10, 0.3]]), np.array([1e-20, 1e10]))
    assert out[0, 0] == pytest.approx(1e160, rel=1e-9) and out[1, 1] == pytest.approx(1.5)


# ------------------------------------------------------------------------------------------ frontier


def test_envelope_is_the_running_minimum() -> None:
    C = np.array([1, 2, 3, 4, 5, 5], dtype=float)
    L = np.array([5, 6, 4, 4.5, 3, 2.5])
    assert np.flatnonzero(envelope_mask(C, L)[0]).tolist() == [0, 2, 5]  # ties in C: the lower loss only
    inc = np.array([[1, 1, 0, 1, 1, 0]])  # a row without points 2 and 5
    assert np.flatnonzero(envelope_mask(C, L, inc)[0]).tolist() == [0, 3, 4]


def test_offset_power_law_recovered_exactly() -> None:
    law = PowerLaw(E=1.5, x0=1e10, alpha=0.15)
    C = np.logspace(12, 20, 12)
    fit = fit_offset_power_law(C, law(C))
    assert rel(fit.law.E, 1.5) < 1e-3 and rel(fit.law.x0, 1e10) < 1e-3 and rel(fit.law.alpha, 0.15) < 1e-3
    assert fit.r2 == pytest.approx(1.0) and fit.max_rel_residual < 1e-9 and fit.converged


def test_frontier_without_budgets_ignores_dominated_runs() -> None:
    law = PowerLaw(E=2.0, x0=3e14, alpha=0.3)
    C = np.logspace(13, 19, 10)
    Cx = np.concatenate([C, C * 1.3])  # badly allocated runs: 20% above the frontier
    Lx = np.concatenate([law(C), law(C * 1.3) * 1.2])
    b = group_budgets(Cx, np.arange(20.0) + 1, design="grid")
    fit = fit_frontier(frontier_points(Cx, Lx[None, :], np.full(20, 0.01), b, None))
    assert sorted(fit.index.tolist()) == list(range(10))
    assert rel(fit.law.alpha, 0.3) < 1e-3 and rel(fit.law.E, 2.0) < 1e-3


def test_numeric_budget_labels_read_as_three_digits_and_others_as_given() -> None:
    C = np.array([5.62e11, 5.62e11, 1e12, 1e12, 3e10])
    b = group_budgets(C, np.arange(5.0) + 1, np.array(["562000000000.0"] * 2 + ["1e12"] * 2 + ["small"]))
    assert b.labels == ("small", "5.62e+11", "1e+12")


def test_pure_power_law_is_a_line_in_log_log() -> None:
    C = np.logspace(10, 20, 8)
    fit = fit_power_law(C, (1e25 / C) ** 0.07)
    assert fit.law.E == 0 and rel(fit.law.alpha, 0.07) < 1e-9 and rel(fit.law.x0, 1e25) < 1e-6


def test_weights_mean_duplicated_points() -> None:
    """A row of weights is the same fit as the points repeated that often."""
    law = PowerLaw(E=1.0, x0=1e8, alpha=0.4)
    x = np.logspace(6, 12, 9)
    L = law(x) * np.exp(0.02 * np.random.default_rng(3).standard_normal(9))
    counts = np.array([2, 0, 1, 1, 3, 0, 1, 0, 1])
    params, ok = offset_power_law_batch(x, L[None, :], counts[None, :].astype(float))
    rep = fit_offset_power_law(np.repeat(x, counts), np.repeat(L, counts))
    assert ok[0]
    assert np.allclose(params[0], [rep.law.E, rep.law.x0, rep.law.alpha], rtol=1e-5, atol=1e-7)


def test_kaplan_laws_at_the_largest_budget_and_model() -> None:
    obs = grid_observations(CHINCHILLA, np.logspace(6, 9, 6), np.logspace(8, 11, 5))
    LN = fit_kaplan(obs.N, obs.D, obs.L, vary="N")  # at D max: L = (E + B/D^beta) + A/N^alpha exactly
    assert rel(LN.law.alpha, 0.34) < 1e-3
    assert rel(LN.law.E, CHINCHILLA.E + CHINCHILLA.B * 1e11**-0.28) < 1e-3
    LD = fit_kaplan(obs.N, obs.D, obs.L, vary="D")
    assert rel(LD.law.alpha, 0.28) < 1e-3 and LD.x.size == 5


# ----------------------------------------------------------------------------------- approach 2 and 3


def _isoflop(obs: Observations, window: float = 2.0):
    b = group_budgets(obs.C, obs.N, obs.budget, "isoflop")
    return fit_isoflop(obs.N, obs.D, obs.L, np.ones(obs.N.size), np.full(obs.N.size, 0.01), b, window=window)


def test_isoflop_exponents_recovered_exactly() -> None:
    for s in (CHINCHILLA, OTHER):
        fit, _, _ = _isoflop(isoflop_observations(s, BUDGETS, sizes=9))
        assert rel(fit.a, s.a) < 1e-3 and rel(fit.b, s.b) < 1e-3
        assert all(p.used for p in fit.budgets) and all(p.window.size == 3 for p in fit.budgets)


def test_isoflop_budget_with_its_best_run_at_an_edge_has_no_optimum() -> None:
    obs = isoflop_observations(CHINCHILLA, BUDGETS[:4], sizes=5, span=3.0)
    N = obs.N.copy()
    N[obs.budget == obs.budget[0]] *= 30  # the first budget only tries sizes far above its optimum
    obs = dataclasses.replace(obs, N=N, D=obs.C / (6 * N), L=CHINCHILLA.loss(N, obs.C / (6 * N)))
    fit, prof, _ = _isoflop(obs)
    assert [p.used for p in fit.budgets] == [False, True, True, True]
    assert fit.budgets[0].status == "edge" and "not bracketed" in fit.budgets[0].note
    assert fit.budgets[0].L_front == pytest.approx(obs.L[obs.budget == obs.budget[0]].min())  # its best run


@pytest.mark.parametrize("surface", [CHINCHILLA, OTHER], ids=["chinchilla", "other"])
def test_parametric_recovered_exactly(surface: LossSurface) -> None:
    obs = grid_observations(surface, np.logspace(5, 8, 6), np.logspace(7, 10, 5))
    fit = fit_parametric(obs.N, obs.D, obs.L)
    got = dataclasses.asdict(fit.surface)
    for key, want in dataclasses.asdict(surface).items():
        assert rel(got[key], want) < 1e-3, key


def test_parametric_refit_matches_full_fit() -> None:
    """The bootstrap's batched solver finds the optimum the L-BFGS-B fit found."""
    obs = isoflop_observations(CHINCHILLA, BUDGETS, sizes=7, noise=0.01, rng=np.random.default_rng(1))
    fit = fit_parametric(obs.N, obs.D, obs.L)
    samples, ok = refit_parametric(obs.N, obs.D, obs.L[None, :], fit)
    s = fit.surface
    assert ok[0] and np.allclose(samples[0], [s.E, s.A, s.B, s.alpha, s.beta], rtol=1e-6)


# ---------------------------------------------------------------------------------------- whole sweep


@pytest.fixture(scope="module")
def clean_report():
    obs = isoflop_observations(CHINCHILLA, BUDGETS, sizes=9, curves=4)
    return fit_sweep(obs, QUICK, bayes_loss=CHINCHILLA.E)


def test_fit_sweep_recovers_every_law_without_noise(clean_report) -> None:
    r, s = clean_report, CHINCHILLA
    # along the compute-optimal allocation L(C) = E + const * C^-(alpha beta / (alpha + beta)) exactly
    assert rel(r.frontier.law.alpha, s.alpha * s.beta / (s.alpha + s.beta)) < 1e-3
    assert rel(r.frontier.law.E, s.E) < 1e-3
    assert set(r.frontier_source) == {"fitted minimum"}
    assert rel(r.isoflop.a, s.a) < 1e-3 and rel(r.isoflop.b, s.b) < 1e-3
    for key in ("E", "A", "B", "alpha", "beta"):
        assert rel(getattr(r.parametric.surface, key), getattr(s, key)) < 1e-3
    assert r.holdout.laws["offset"].max_rel_error < 1e-4 and r.holdout.parametric_max_rel_error < 1e-6
    assert r.holdout.laws["floor"].max_rel_error < 1e-4  # E fixed at the known floor
    assert r.frontier_curves is not None
    assert r.verdict.smooth and r.verdict.sentence.startswith(
        "loss scales smoothly with compute: yes, because"
    )
    assert r.ground_truth.contains and r.ground_truth.bayes_loss == s.E
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert {"frontier", "power_law", "kaplan", "isoflop", "parametric", "holdout", "verdict", "calibration",
            "design", "noise", "ground_truth", "conventions", "n_runs", "excluded"} <= d.keys()  # fmt: skip
    assert d["noise"]["source"] == "residuals" and d["noise"]["level"] == pytest.approx(0.002)  # the floor
    assert d["skipped"].keys() == {"kaplan_L_N", "kaplan_L_D", "calibration"}


def test_noisy_truth_inside_bootstrap_intervals() -> None:
    s = CHINCHILLA
    obs = isoflop_observations(s, np.logspace(15, 19, 8), sizes=11, noise=0.01, rng=np.random.default_rng(7))
    r = fit_sweep(obs, FitConfig(bootstrap=300, seed=1, calibration_draws=0), bayes_loss=s.E)
    par = r.parametric
    for key in ("E", "alpha", "beta", "a", "b"):
        assert inside(getattr(s, key), par.ci.get(key)), key
    assert inside(s.a, r.isoflop.ci.get("a")) and inside(s.b, r.isoflop.ci.get("b"))
    assert inside(s.alpha * s.beta / (s.alpha + s.beta), r.frontier.ci.get("alpha"))
    assert r.ground_truth.contains
    for fit in (r.frontier, r.parametric, r.isoflop):
        assert all(fit.ci.reliable.values()) and fit.ci.failed_share < 0.1
    assert r.bootstrap.resamples == 300


# ------------------------------------------------------------------------------------ degenerate input


def _obs(n: int, **over) -> Observations:
    N = np.logspace(6, 8, n)
    D = np.logspace(9, 10, n)
    base = dict(run_id=[f"r{i}" for i in range(n)], N=N, D=D, C=6 * N * D, L=CHINCHILLA.loss(N, D))
    base.update(over)
    return Observations(**base)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: fit_sweep(_obs(3), QUICK), "3 distinct runs"),
        (lambda: fit_sweep(_obs(6, N=np.full(6, 1e6)), QUICK), "same size"),
        (lambda: fit_sweep(_obs(6, C=np.full(6, 1e15)), QUICK), "same compute"),
        (lambda: _obs(5, L=np.array([3.0, 2.0, np.nan, 1.9, 1.8])), "L = nan for run r2"),
        (lambda: _obs(5, D=np.array([1e9, -1, 1e9, 1e9, 1e9])), "D = -1.0 for run r1"),
        (lambda: _obs(5, N=np.ones(4)), "shape"),
        (lambda: _obs(5, design="diagonal"), "design 'diagonal'"),
        (lambda: fit_offset_power_law(np.logspace(1, 3, 3), np.ones(3) * 2), r"3 point\(s\) for a law"),
        (lambda: fit_offset_power_law(np.array([1.0, 1, 2, 2, 3]), np.linspace(3, 2, 5)), "3 distinct"),
        (
            lambda: fit_parametric(np.repeat([1e6, 1e7], 4), np.logspace(9, 10, 8), np.linspace(3, 2, 8)),
            "2 distinct N",
        ),
        (lambda: fit_power_law(np.array([1.0, 2.0, 0.0]), np.ones(3)), r"x\[2\]"),
    ],
    ids=[
        "too-few-runs", "one-size", "one-budget", "nan", "negative", "lengths", "design", "3-points",
        "3-distinct", "parametric-sizes", "zero-x",
    ],
)  # fmt: skip
def test_degenerate_input_raises_one_line(make, match) -> None:
    with pytest.raises(FitError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_degenerate_surface_has_no_tokens_per_param() -> None:
    """A fit whose N-term vanishes puts N_opt at 0: the ratio is reported missing, not a crash."""
    from harness.fit.parametric import ParametricFit

    flat = LossSurface(E=1.0, A=1e-300, B=10.0, alpha=0.01, beta=0.3)
    fit = ParametricFit(flat, 6.0, 1e-3, 0.0, True, 10, 1.0, 0.0, (0.0, 0.0))
    out = fit.compute_optimal(1e15)
    assert out["N_opt"] == 0 and out["tokens_per_param"] is None
