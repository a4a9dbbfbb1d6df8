"""The fitter against data drawn from known laws: exact recovery without noise, honest intervals with it,
FitError on degenerate input, a verdict that follows the data, and a hold-out that predicts."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.config import FitConfig
from harness.fit import (
    FitError,
    LossSurface,
    Observations,
    PowerLaw,
    check_monotone,
    envelope_weights,
    fit_frontier,
    fit_isoflop,
    fit_kaplan,
    fit_offset_power_law,
    fit_parametric,
    fit_power_law,
    fit_sweep,
    frontier_envelope,
    group_budgets,
    refit_offset_power_law,
    refit_parametric,
    resample_counts,
    split_holdout,
)
from harness.fit.frontier import simpler_law
from harness.fit.holdout import fit_holdout
from harness.fit.synthetic import grid_observations, isoflop_observations

CHINCHILLA = LossSurface(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
OTHER = LossSurface(E=0.8, A=30.0, B=200.0, alpha=0.25, beta=0.4)
BUDGETS = np.logspace(15, 19, 6)


def rel(a: float, b: float) -> float:
    return abs(a / b - 1)


def inside(value: float, ci: tuple[float, float]) -> bool:
    return ci[0] <= value <= ci[1]


# ---------------------------------------------------------------------------------------------- laws


def test_fit_is_pure() -> None:
    """harness.fit loads without torch, plotting or W&B, so a fit can be redone on a laptop."""
    code = "import sys, harness.fit; print([m for m in ('torch', 'matplotlib', 'wandb') if m in sys.modules])"
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


def test_closed_forms() -> None:
    s = CHINCHILLA
    assert s.a + s.b == pytest.approx(1.0)
    C = np.array([1e18, 1e21])
    assert np.allclose(6 * s.N_opt(C) * s.D_opt(C), C)  # the allocation spends exactly C
    # N_opt minimises L along C = 6 N D
    N = s.N_opt(1e20) * np.array([0.9, 1.0, 1.1])
    L = s.loss(N, 1e20 / (6 * N))
    assert L[1] < L[0] and L[1] < L[2]
    assert PowerLaw(1.0, 1e10, 0.5)(1e10) == pytest.approx(2.0)


# ------------------------------------------------------------------------------------------ frontier


def test_envelope_is_the_running_minimum() -> None:
    C = np.array([1, 2, 3, 4, 5, 5], dtype=float)
    L = np.array([5, 6, 4, 4.5, 3, 2.5])
    assert frontier_envelope(C, L).tolist() == [0, 2, 5]  # ties in C: the lower loss only
    groups = np.array([0, 0, 1, 1, 2, 2])  # one point per budget: its best
    assert frontier_envelope(C, L, groups=groups).tolist() == [0, 2, 5]
    W = envelope_weights(C, L, np.array([[1, 1, 0, 1, 1, 0]]))  # a resample without runs 2 and 5
    assert np.flatnonzero(W[0]).tolist() == [0, 3, 4]


def test_offset_power_law_recovered_exactly() -> None:
    law = PowerLaw(E=1.5, x0=1e10, alpha=0.15)
    C = np.logspace(12, 20, 12)
    fit = fit_offset_power_law(C, law(C))
    assert rel(fit.law.E, 1.5) < 1e-3 and rel(fit.law.x0, 1e10) < 1e-3 and rel(fit.law.alpha, 0.15) < 1e-3
    assert fit.r2 == pytest.approx(1.0) and fit.max_rel_residual < 1e-9 and fit.converged


def test_frontier_ignores_dominated_runs() -> None:
    law = PowerLaw(E=2.0, x0=3e14, alpha=0.3)
    C = np.logspace(13, 19, 10)
    Cx = np.concatenate([C, C * 1.3])  # badly allocated runs: 20% above the frontier
    Lx = np.concatenate([law(C), law(C * 1.3) * 1.2])
    fit = fit_frontier(Cx, Lx)
    assert sorted(fit.index.tolist()) == list(range(10))
    assert rel(fit.law.alpha, 0.3) < 1e-3 and rel(fit.law.E, 2.0) < 1e-3


def test_pure_power_law_is_a_line_in_log_log() -> None:
    C = np.logspace(10, 20, 8)
    fit = fit_power_law(C, (1e25 / C) ** 0.07)
    assert fit.law.E == 0 and rel(fit.law.alpha, 0.07) < 1e-9 and rel(fit.law.x0, 1e25) < 1e-6


def test_extrapolation_trusts_the_offset_only_where_it_earns_its_parameter() -> None:
    C = np.logspace(12, 20, 12)
    offset_truth = PowerLaw(E=1.5, x0=1e10, alpha=0.15)(C)
    chosen = simpler_law(fit_offset_power_law(C, offset_truth), fit_power_law(C, offset_truth))
    assert rel(chosen.law.E, 1.5) < 1e-3  # a real floor, 12 points: the offset law wins
    noise = np.exp(np.random.default_rng(0).normal(0, 0.01, 4))
    C4 = C[:4]
    few = (1e25 / C4) ** 0.07 * noise  # 4 points: 3 parameters would interpolate them
    assert simpler_law(fit_offset_power_law(C4, few), fit_power_law(C4, few)).law.E == 0


def test_holdout_with_few_budgets_extrapolates_the_pure_law() -> None:
    obs = isoflop_observations(CHINCHILLA, BUDGETS[:5], sizes=5)
    L = (1e22 / obs.C) ** 0.1 * np.exp(np.random.default_rng(1).normal(0, 0.005, obs.C.size))
    h = fit_holdout(obs.N, obs.D, obs.C, L, group_budgets(obs.C, obs.budget), frac=0.2, resamples=50)
    assert h.law == "(C0/C)^alpha" and h.frontier.law.E == 0
    assert h.max_rel_error < 0.02
    assert h.ci["max_rel_error"][0] <= h.max_rel_error <= h.ci["max_rel_error"][1] + 1e-12


def test_weights_mean_duplicated_points() -> None:
    """A bootstrap row of counts is the same fit as the points repeated that often."""
    law = PowerLaw(E=1.0, x0=1e8, alpha=0.4)
    rng = np.random.default_rng(3)
    x = np.logspace(6, 12, 9)
    L = law(x) * np.exp(0.02 * rng.standard_normal(9))
    full = fit_offset_power_law(x, L)
    counts = np.array([[2, 0, 1, 1, 3, 0, 1, 0, 1]], dtype=float)
    samples, ok = refit_offset_power_law(x, L, counts, full)
    rep = fit_offset_power_law(np.repeat(x, counts[0].astype(int)), np.repeat(L, counts[0].astype(int)))
    assert ok[0]
    assert np.allclose(samples[0], [rep.law.E, rep.law.x0, rep.law.alpha], rtol=1e-5, atol=1e-7)


def test_kaplan_laws_at_the_largest_budget_and_model() -> None:
    obs = grid_observations(CHINCHILLA, np.logspace(6, 9, 6), np.logspace(8, 11, 5))
    LN = fit_kaplan(obs.N, obs.D, obs.L, vary="N")  # at D max: L = (E + B/D^beta) + A/N^alpha exactly
    assert rel(LN.law.alpha, 0.34) < 1e-3
    assert rel(LN.law.E, CHINCHILLA.E + CHINCHILLA.B * 1e11**-0.28) < 1e-3
    LD = fit_kaplan(obs.N, obs.D, obs.L, vary="D")
    assert rel(LD.law.alpha, 0.28) < 1e-3 and LD.x.size == 5


# ----------------------------------------------------------------------------------- approach 2 and 3


def test_isoflop_exponents_recovered_exactly() -> None:
    for s in (CHINCHILLA, OTHER):
        obs = isoflop_observations(s, BUDGETS, sizes=9)
        b = group_budgets(obs.C, obs.budget)
        assert b.isoflop and len(b.labels) == 6
        iso = fit_isoflop(obs.N, obs.D, obs.C, obs.L, groups=b.ids, labels=b.labels)
        assert rel(iso.a, s.a) < 1e-3 and rel(iso.b, s.b) < 1e-3
        assert all(p.used for p in iso.budgets)


def test_isoflop_reports_a_minimum_outside_the_sizes() -> None:
    obs = isoflop_observations(CHINCHILLA, BUDGETS[:4], sizes=5, span=3.0)
    N = obs.N.copy()
    N[obs.budget == obs.budget[0]] *= 30  # the first budget only tries sizes far above its optimum
    b = group_budgets(obs.C, obs.budget)
    iso = fit_isoflop(N, obs.C / (6 * N), obs.C, CHINCHILLA.loss(N, obs.C / (6 * N)), groups=b.ids)
    assert [p.used for p in iso.budgets] == [False, True, True, True]
    assert "outside the sizes" in iso.budgets[0].note


@pytest.mark.parametrize("surface", [CHINCHILLA, OTHER], ids=["chinchilla", "other"])
def test_parametric_recovered_exactly(surface: LossSurface) -> None:
    obs = grid_observations(surface, np.logspace(5, 8, 6), np.logspace(7, 10, 5))
    fit = fit_parametric(obs.N, obs.D, obs.L)
    got = dataclasses.asdict(fit.surface)
    for key, want in dataclasses.asdict(surface).items():
        assert rel(got[key], want) < 1e-3, key
    assert rel(fit.surface.a, surface.a) < 1e-3


def test_parametric_refit_matches_full_fit() -> None:
    """The bootstrap's batched solver finds the optimum the L-BFGS-B fit found."""
    obs = isoflop_observations(CHINCHILLA, BUDGETS, sizes=7, noise=0.01, rng=np.random.default_rng(1))
    fit = fit_parametric(obs.N, obs.D, obs.L)
    samples, ok = refit_parametric(obs.N, obs.D, obs.L, fit, np.ones((1, obs.N.size)))
    s = fit.surface
    assert ok[0] and np.allclose(samples[0], [s.E, s.A, s.B, s.alpha, s.beta], rtol=1e-6)


# ---------------------------------------------------------------------------------------- whole sweep


@pytest.fixture(scope="module")
def clean_report():
    obs = isoflop_observations(CHINCHILLA, BUDGETS, sizes=9, curves=4)
    return fit_sweep(obs, FitConfig(bootstrap=50), bayes_loss=CHINCHILLA.E)


def test_fit_sweep_recovers_every_law_without_noise(clean_report) -> None:
    r, s = clean_report, CHINCHILLA
    # along the compute-optimal allocation L(C) = E + const * C^-(alpha beta / (alpha + beta)) exactly
    assert rel(r.frontier.law.alpha, s.alpha * s.beta / (s.alpha + s.beta)) < 1e-3
    assert rel(r.frontier.law.E, s.E) < 1e-3
    assert rel(r.isoflop.a, s.a) < 1e-3 and rel(r.isoflop.b, s.b) < 1e-3
    for key in ("E", "A", "B", "alpha", "beta"):
        assert rel(getattr(r.parametric.surface, key), getattr(s, key)) < 1e-3
    assert r.holdout.max_rel_error < 1e-6 and r.holdout.parametric_max_rel_error < 1e-6
    assert r.frontier_curves is not None
    assert r.verdict.smooth and r.verdict.sentence.startswith(
        "loss scales smoothly with compute: yes, because"
    )
    assert r.ground_truth.contains and r.ground_truth.bayes_loss == s.E
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert {
        "frontier",
        "power_law",
        "kaplan",
        "isoflop",
        "parametric",
        "holdout",
        "verdict",
        "ground_truth",
        "conventions",
        "n_runs",
        "excluded",
    } <= d.keys()
    assert d["skipped"].keys() == {"kaplan_L_N", "kaplan_L_D"}  # an IsoFLOP design has no such runs


def test_noisy_truth_inside_bootstrap_intervals() -> None:
    s = CHINCHILLA
    obs = isoflop_observations(s, np.logspace(15, 19, 8), sizes=11, noise=0.01, rng=np.random.default_rng(7))
    r = fit_sweep(obs, FitConfig(bootstrap=300, seed=1), bayes_loss=s.E)
    par = r.parametric
    for key in ("E", "alpha", "beta", "a", "b"):
        assert inside(getattr(s, key), par.ci[key]), key
    assert inside(s.a, r.isoflop.ci["a"]) and inside(s.b, r.isoflop.ci["b"])
    assert inside(s.alpha * s.beta / (s.alpha + s.beta), r.frontier.ci["alpha"])
    assert r.ground_truth.contains
    for name, ci in (("E", par.ci["E"]), ("alpha", par.ci["alpha"])):
        assert ci[0] < ci[1], name  # noise gives intervals of non-zero width
    assert r.bootstrap.resamples == 300 and sum(r.bootstrap.failed.values()) < 30


def test_verdict_flips_when_loss_stops_improving() -> None:
    obs = isoflop_observations(CHINCHILLA, BUDGETS, sizes=9, noise=0.003, rng=np.random.default_rng(2))
    cfg = FitConfig(bootstrap=20)
    assert fit_sweep(obs, cfg).verdict.smooth
    L = obs.L.copy()
    L[obs.budget == obs.budget[-1]] *= 1.3  # the largest budget trains worse than the one below
    r = fit_sweep(dataclasses.replace(obs, L=L), cfg)
    assert not r.verdict.smooth
    assert not r.verdict.checks["monotone"] and not r.verdict.checks["holdout"]
    assert r.verdict.sentence.startswith("loss scales smoothly with compute: no, because")
    assert f"{r.monotonicity.worst_rise:.2%}" in r.verdict.sentence


def test_verdict_fails_on_scatter() -> None:
    obs = grid_observations(
        CHINCHILLA, np.logspace(6, 9, 5), np.logspace(8, 11, 5), noise=0.08, rng=np.random.default_rng(4)
    )
    r = fit_sweep(obs, FitConfig(bootstrap=0))
    assert not r.verdict.smooth and not r.verdict.checks["residual"]
    assert f"{r.frontier.max_rel_residual:.2%}" in r.verdict.sentence
    assert r.frontier.ci == {} and r.to_dict()["bootstrap"]["resamples"] == 0


# ------------------------------------------------------------------------------------------- holdout


def test_holdout_split_rules() -> None:
    obs = isoflop_observations(CHINCHILLA, BUDGETS, sizes=5)
    held, rule = split_holdout(obs.C, group_budgets(obs.C, obs.budget), frac=0.2)
    assert np.all(obs.C[held] == obs.C.max()) and held.size == 5 and "top compute budget" in rule
    C = np.logspace(10, 12, 10)
    b = group_budgets(C)
    assert not b.isoflop
    held, rule = split_holdout(C, b, frac=0.2)
    assert held.tolist() == [8, 9] and "2 runs with the most compute" in rule
    held, _ = split_holdout(C, b, frac=0.0)
    assert held.tolist() == [9]  # at least one run


def test_holdout_predicts_a_grid_sweep() -> None:
    obs = grid_observations(
        CHINCHILLA, np.logspace(6, 9, 7), np.logspace(8, 11, 6), noise=0.005, rng=np.random.default_rng(0)
    )
    r = fit_sweep(obs, FitConfig(bootstrap=40))
    h = r.holdout
    assert h.held.size == round(0.2 * obs.N.size)
    assert np.all(obs.C[h.held] >= np.sort(obs.C)[-h.held.size])
    assert set(h.targets) <= set(h.held) and set(h.targets) <= set(frontier_envelope(obs.C, obs.L))
    assert h.parametric_max_rel_error < 0.03  # 0.5% noise: the surface predicts every held-out run
    assert h.ci["rel_error"][0] <= h.ci["rel_error"][1]
    assert r.kaplan_N is not None and r.kaplan_D is not None and r.isoflop is None
    assert "compute budgets" in r.skipped["isoflop"]


# ---------------------------------------------------------------------------------- budgets, bootstrap


def test_unlabelled_runs_are_grouped_by_compute() -> None:
    obs = isoflop_observations(CHINCHILLA, BUDGETS[:4], sizes=5)
    jitter = np.random.default_rng(0).uniform(0.97, 1.03, obs.C.size)  # token counts rounded to batches
    b = group_budgets(obs.C * jitter)
    assert b.isoflop and len(b.labels) == 4
    grid = grid_observations(CHINCHILLA, np.logspace(6, 9, 5), np.logspace(8, 11, 4))
    assert not group_budgets(grid.C).isoflop
    square = grid_observations(CHINCHILLA, np.logspace(6, 9, 5), np.logspace(8, 11, 5))
    assert group_budgets(square.C).isoflop  # equal log steps in N and D: the anti-diagonals share C


def test_monotonicity_check() -> None:
    b = group_budgets(np.array([1.0, 1.0, 10, 10, 100, 100]), np.array(["a", "a", "b", "b", "c", "c"]))
    m = check_monotone(np.array([3.0, 3.5, 2.5, 2.6, 2.4, 2.45]), b)
    assert m.monotone and m.worst_rise < 0
    m = check_monotone(np.array([3.0, 3.5, 2.5, 2.6, 2.7, 2.8]), b)
    assert not m.monotone and m.worst_label == "c" and m.worst_rise == pytest.approx(2.7 / 2.5 - 1)


def test_resample_counts() -> None:
    counts = resample_counts(30, 200, np.random.default_rng(0))
    assert counts.shape == (200, 30) and np.all(counts.sum(axis=1) == 30)
    assert np.array_equal(counts, resample_counts(30, 200, np.random.default_rng(0)))


def test_failed_resamples_are_dropped_and_counted() -> None:
    # L(D) at the largest model rests on exactly 4 token counts: most resamples lose one of them
    obs = grid_observations(
        CHINCHILLA, np.logspace(6, 9, 5), np.logspace(8, 11, 4), noise=0.01, rng=np.random.default_rng(5)
    )
    r = fit_sweep(obs, FitConfig(bootstrap=100))
    failed = r.bootstrap.failed["kaplan_L_D"]
    assert 0 < failed < 100 and len(r.samples["kaplan_L_D"]) == 100 - failed


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
        (lambda: fit_sweep(_obs(3), FitConfig()), "3 runs"),
        (lambda: fit_sweep(_obs(6, N=np.full(6, 1e6)), FitConfig()), "same size"),
        (lambda: fit_sweep(_obs(6, C=np.full(6, 1e15)), FitConfig()), "same compute"),
        (lambda: _obs(5, L=np.array([3.0, 2.0, np.nan, 1.9, 1.8])), "L = nan for run r2"),
        (lambda: _obs(5, D=np.array([1e9, -1, 1e9, 1e9, 1e9])), "D = -1.0 for run r1"),
        (lambda: _obs(5, N=np.ones(4)), "shape"),
        (lambda: fit_offset_power_law(np.logspace(1, 3, 3), np.ones(3) * 2), r"3 point\(s\) for a law"),
        (lambda: fit_offset_power_law(np.array([1.0, 1, 2, 2, 3]), np.linspace(3, 2, 5)), "3 distinct"),
        (lambda: fit_frontier(np.arange(1.0, 7), np.arange(1.0, 7)), "only 1 of 6 points"),
        (
            lambda: fit_parametric(np.repeat([1e6, 1e7], 4), np.logspace(9, 10, 8), np.linspace(3, 2, 8)),
            "2 distinct N",
        ),
        (lambda: fit_power_law(np.array([1.0, 2.0, 0.0]), np.ones(3)), r"C\[2\]|x\[2\]"),
    ],
    ids=[
        "too-few-runs",
        "one-size",
        "one-budget",
        "nan",
        "negative",
        "lengths",
        "3-points",
        "3-distinct",
        "no-frontier",
        "parametric-sizes",
        "zero-x",
    ],
)
def test_degenerate_input_raises_one_line(make, match) -> None:
    with pytest.raises(FitError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_isoflop_needs_two_budgets_with_a_minimum() -> None:
    obs = isoflop_observations(CHINCHILLA, BUDGETS[:1], sizes=7)
    with pytest.raises(FitError, match="a and b need 2"):
        fit_isoflop(obs.N, obs.D, obs.C, obs.L, groups=np.zeros(7, dtype=int))


def test_degenerate_surface_has_no_tokens_per_param() -> None:
    """A fit whose N-term vanishes puts N_opt at 0: the ratio is reported missing, not a crash."""
    from harness.fit.parametric import ParametricFit

    flat = LossSurface(E=1.0, A=1e-300, B=10.0, alpha=0.01, beta=0.3)
    fit = ParametricFit(flat, 6.0, 1e-3, 0.0, True, 10, 1.0, 0.0, (0.0, 0.0))
    out = fit.compute_optimal(1e15)
    assert out["N_opt"] == 0 and out["tokens_per_param"] is None
