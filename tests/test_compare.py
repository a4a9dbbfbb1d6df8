"""The paired comparison: budgets and interpolation, differences and their noise, the verdict's rules,
their right-verdict rate on simulated truth at the experiments' measured noise, repeated data against
epochs, and compare_dir on result tables drawn from known laws (no training)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from harness.fit import FitError
from harness.stats import Estimate, Pairs, TooFewBudgets, is_effect, is_equivalent, paired_test
from harness.studies.compare import compare_dir
from harness.studies.compare.__main__ import main
from harness.studies.compare.calibrate import TRUTHS, calibrate, true_difference, verdict_counts
from harness.studies.compare.experiment import record_experiment
from harness.studies.compare.judge import (
    INCONCLUSIVE,
    NONE,
    OFFSET,
    SLOPE,
    TOP,
    Rules,
    ingredient_verdict,
    judge,
)
from harness.studies.compare.paired import Curve, budget_points, interp_loglog, pair_runs
from harness.studies.compare.repetition import fit_repetition, onset_epochs, repetition_cost

# the ladder experiments' budgets, FLOPs (configs/experiment/common/ladder.yaml; depth 2 from width 48)
LADDER_C = np.array([1.16e9, 2.97e9, 6.95e9, 1.45e10, 5.44e10, 1.03e11, 1.87e11, 3.23e11, 5.6e11])
RULES = Rules()


def curve(name: str, C: np.ndarray, lnL: np.ndarray, epochs: np.ndarray | None = None) -> Curve:
    """A Curve with one seed per column of lnL (k, n)."""
    ep = np.zeros(C.size) if epochs is None else epochs
    return Curve(name, {s: (C, np.exp(lnL[:, s]), ep) for s in range(lnL.shape[1])})


# --------------------------------------------------------------------------------------------------
# budgets, interpolation, pairs


def test_budget_points_keep_each_budgets_best_run() -> None:
    C = np.array([1e10, 1.05e10, 3e10, 1e10 * 1.08, 3.2e10])
    L = np.array([3.0, 2.8, 2.5, 2.9, 2.4])
    Cb, Lb, _ = budget_points(C, L, np.arange(5.0))
    np.testing.assert_allclose(Cb, [1.05e10, 3.2e10])
    np.testing.assert_allclose(Lb, [2.8, 2.4])


def test_interp_loglog_is_exact_on_a_power_law_and_reaches_only_a_little_beyond() -> None:
    xp = np.array([1e9, 1e10, 1e11])
    yp = 5 * xp**-0.1
    x = np.array([1e9 / 1.05, 3e9, 3e10, 1.05e11, 1.2e11, 1e8])
    y = interp_loglog(x, xp, yp)
    np.testing.assert_allclose(y[:4], 5 * x[:4] ** -0.1, rtol=1e-12)
    assert np.isnan(y[4:]).all()  # more than 10% beyond the ends


def test_pairs_interpolate_the_variant_at_the_references_compute() -> None:
    C = LADDER_C
    ref = curve("ref", C, np.column_stack([-0.1 * np.log(C)] * 2))
    Cv = C * 1.07  # e.g. an LSTM at the same N and D costs other FLOPs
    var = curve("var", Cv, np.column_stack([0.03 - 0.1 * np.log(Cv)] * 2))
    p = pair_runs(ref, var)
    np.testing.assert_allclose(p.C, C)
    np.testing.assert_allclose(p.d, 0.03, atol=1e-12)  # the same law, 3% above, read at the same compute
    only_one = Curve("var", {1: var.seeds[1]})
    assert pair_runs(ref, only_one).seeds.tolist() == [1]  # only seeds both trained are paired
    with pytest.raises(FitError, match="no budget and seed shared"):
        pair_runs(ref, Curve("far", {0: (C * 1e3, np.ones(C.size), np.zeros(C.size))}))


def test_a_budget_some_seed_lacks_is_left_out() -> None:
    C = LADDER_C
    ref = curve("ref", C, np.zeros((9, 2)))
    var = curve("var", C, np.full((9, 2), 0.02))
    var.seeds[1] = tuple(a[:-1] for a in var.seeds[1])  # seed 1's top run diverged
    p = pair_runs(ref, var)
    assert p.C.size == 8 and p.dropped == 1


# --------------------------------------------------------------------------------------------------
# the paired test


def pairs(d: np.ndarray, C: np.ndarray = LADDER_C) -> Pairs:
    return Pairs(C=C, seeds=np.arange(d.shape[1]), d=d, epochs=np.zeros(C.size), dropped=0)


def test_paired_test_recovers_offset_slope_and_top_without_noise_but_a_seed_effect() -> None:
    x = np.log(LADDER_C) - np.log(LADDER_C).mean()
    seed_effect = np.array([-0.01, 0.0, 0.01])
    d = 0.02 + 0.03 * x[:, None] + seed_effect[None, :]
    t = paired_test(pairs(d))
    assert t.offset.value == pytest.approx(0.02)
    assert t.slope.value == pytest.approx(0.03)
    assert t.top.value == pytest.approx(0.02 + 0.03 * x[-1])
    assert t.slope.se == pytest.approx(0, abs=1e-12)  # a seed's shared effect does not blur the slope
    assert t.offset.se == pytest.approx(0.01 / math.sqrt(3))  # ... but the offset: the seeds' means
    assert t.offset.df == 2 and t.slope.df == 16
    assert t.C_mid == pytest.approx(math.exp(np.log(LADDER_C).mean()))


def test_paired_test_errors_match_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0, 0.01, (9, 4)) + rng.normal(0, 0.005, 4)[None, :]
    t = paired_test(pairs(d))
    x = np.log(LADDER_C) - np.log(LADDER_C).mean()
    per_seed_slope = (x @ d) / (x @ x)  # balanced: the slope's error is that of the seeds' slopes,
    # up to pooling its variance over the budget x seed interaction
    assert t.offset.se == pytest.approx(d.mean(axis=0).std(ddof=1) / 2)
    assert t.slope.value == pytest.approx(per_seed_slope.mean())
    resid = d - d.mean(1, keepdims=True) - d.mean(0, keepdims=True) + d.mean()
    assert t.sigma_run == pytest.approx(math.sqrt(np.sum(resid**2) / 24))
    assert t.slope.se == pytest.approx(t.sigma_run / math.sqrt(4 * x @ x))


def test_lack_of_fit_flags_a_difference_that_is_not_a_line() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.005, (9, 3))
    x = np.log(LADDER_C)
    line = paired_test(pairs(0.01 * x[:, None] + noise))
    hinge = paired_test(pairs(0.05 * np.clip(x - x[5], 0, None)[:, None] + noise))
    assert line.lack_of_fit_p > RULES.lof_level and hinge.lack_of_fit_p < 1e-4


def test_one_seed_uses_the_lines_residuals() -> None:
    t = paired_test(pairs(np.array([[0.0], [0.01], [0.0], [0.01]]), LADDER_C[:4]))
    assert t.offset.df == 2 and math.isnan(t.lack_of_fit_p) and t.offset.se > 0
    with pytest.raises(TooFewBudgets, match="at least 2"):
        paired_test(pairs(np.zeros((1, 2)), LADDER_C[:1]))


# --------------------------------------------------------------------------------------------------
# the rules


def test_effect_needs_significance_and_size_and_equivalence_needs_both_bounds() -> None:
    assert is_effect(Estimate(0.05, 0.01, 20), 0.01, 0.05)
    assert not is_effect(Estimate(0.008, 0.001, 20), 0.01, 0.05)  # significant but below the smallest
    assert not is_effect(Estimate(0.05, 0.03, 20), 0.01, 0.05)  # large but not significant
    assert is_equivalent(Estimate(0.002, 0.002, 20), 0.01, 0.05)
    assert not is_equivalent(Estimate(0.002, 0.01, 20), 0.01, 0.05)  # could be 2% either way
    assert not is_equivalent(Estimate(0.0, math.nan, 0), 0.01, 0.05)  # no noise estimate: no claim


@pytest.mark.parametrize(
    ("truth", "expected", "direction"),
    [
        ("offset", OFFSET, "worse"),
        ("slope", SLOPE, "shallower, worse at the top"),
        ("damage at the top", TOP, "worse at the top; d is not a line in ln C"),
        ("no effect", NONE, ""),
    ],
)
def test_verdict_on_each_truth_with_little_noise(truth: str, expected: str, direction: str) -> None:
    rng = np.random.default_rng(2)
    d = true_difference(truth, LADDER_C)[:, None] + rng.normal(0, 0.002, (9, 4))
    j = judge(paired_test(pairs(d)), RULES)
    assert (j.verdict, j.direction) == (expected, direction)


def test_a_gap_that_shrinks_towards_the_top_is_a_slope_not_damage_at_the_top() -> None:
    x = np.log(LADDER_C) - np.log(LADDER_C).mean()
    saturating = -0.15 - 0.1 * np.exp(-(x - x[0]))  # better everywhere, less so at the top
    d = saturating[:, None] + np.random.default_rng(5).normal(0, 0.003, (9, 4))
    j = judge(paired_test(pairs(d)), RULES)
    assert j.nonlinear and j.verdict == SLOPE
    assert j.direction == "shallower, better at the top; d is not a line in ln C"


def test_a_gap_that_widens_ever_more_slowly_is_a_slope_not_damage_at_the_top() -> None:
    x = np.log(LADDER_C) - np.log(LADDER_C).mean()
    concave = 0.15 - 0.1 * np.exp(-(x - x[0]))  # worse with scale, less and less so (noisy data's shape)
    d = concave[:, None] + np.random.default_rng(6).normal(0, 0.003, (9, 4))
    j = judge(paired_test(pairs(d)), RULES)
    assert j.nonlinear and (j.verdict, j.direction) == (
        SLOPE,
        "shallower, worse at the top; d is not a line in ln C",
    )


def test_too_noisy_to_tell_is_inconclusive() -> None:
    d = np.random.default_rng(3).normal(0, 0.05, (9, 2))
    assert judge(paired_test(pairs(d)), RULES).verdict == INCONCLUSIVE


def test_ingredient_verdict() -> None:
    assert ingredient_verdict([NONE, OFFSET, SLOPE]) == SLOPE
    assert ingredient_verdict([OFFSET, TOP]) == TOP
    assert ingredient_verdict([NONE, NONE]) == NONE
    assert ingredient_verdict([NONE, INCONCLUSIVE]) == INCONCLUSIVE


# Noise of one paired difference at the experiments' measured noise: the ladder reference's own seed
# replicates give a run 0.0037 and a seed 0.0022 in ln L (docs/experiments.md); a difference
# of two independent runs, sqrt(2) x that, rounded up. (Same-architecture pairs measured less: clean vs
# noisy data 0.0048 and 0.)
MEASURED = {"sigma_run": 0.006, "sigma_seed": 0.003}
SEEDS = 4


def test_the_rule_is_right_95_percent_of_the_time_at_the_measured_noise() -> None:
    rates = calibrate(LADDER_C, SEEDS, MEASURED["sigma_run"], MEASURED["sigma_seed"], RULES, draws=300)
    assert set(rates) == set(TRUTHS)
    assert min(rates.values()) >= 0.95, rates


def test_when_noise_outgrows_the_seeds_the_rule_says_inconclusive_not_effect() -> None:
    rng = np.random.default_rng(0)
    counts = verdict_counts("no effect", LADDER_C, 2, 0.02, 0.01, RULES, 200, rng)
    assert counts[NONE] < 100  # 2 seeds at three times the noise cannot rule effects out ...
    assert counts[NONE] + counts[INCONCLUSIVE] >= 190  # ... but claim one that is not there in < 5%
    rates = calibrate(LADDER_C, 2, 0.02, 0.01, RULES, draws=200)
    assert rates["offset"] < 0.95 or rates["damage at the top"] < 0.95  # nor always find a real one


# --------------------------------------------------------------------------------------------------
# repeated data


def test_repetition_fit_recovers_r_star_and_the_onset() -> None:
    epochs = 2.0 ** np.arange(0, 5, 0.5)  # 1 to 16 epochs
    d = 0.3 * repetition_cost(epochs - 1, 5.0)
    noisy = d + np.random.default_rng(4).normal(0, 0.002, d.size)
    f = fit_repetition(epochs, noisy, 0.002, noisy - 0.004, smallest=0.01)
    assert f.r_star == pytest.approx(5.0, rel=0.15) and f.c == pytest.approx(0.3, rel=0.15)
    assert f.r_star_ci[0] < 5.0 < f.r_star_ci[1] and not f.at_bound
    first = epochs[np.argmax(d >= 0.014)]  # d grows with epochs: the onset is where it passes 0.01
    assert f.onset == pytest.approx(first, rel=0.42)
    assert (
        fit_repetition(np.zeros(5), d[:5], 0.002, d[:5], smallest=0.01) is None
    )  # fresh data: nothing to fit


def test_onset_needs_every_later_budget_to_cost() -> None:
    epochs = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    assert onset_epochs(epochs, np.array([0.0, 0.02, 0.0, 0.05, 0.3]), np.full(5, 0.001), 0.01) == 8.0
    assert (
        onset_epochs(epochs, np.array([0.0, 0.0, 0.02, 0.05, 0.3]), np.array([0, 0, -1, 1, 1.0]), 0.01) == 8.0
    )
    assert math.isnan(onset_epochs(epochs, np.zeros(5), np.zeros(5), 0.01))
    assert onset_epochs(epochs, np.full(5, 0.1), np.full(5, 0.05), 0.01) == 1.0


# --------------------------------------------------------------------------------------------------
# compare_dir on result tables


def write_variant(path: Path, lnL, *, seeds: int = 3, epochs=None, C=LADDER_C, noise=0.003, seed=0) -> None:
    """results.csv of a paired ladder: every budget once per seed, ln L = lnL(C) + noise."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    cols = ["run_id", "status", "params_total", "tokens", "budget", "flops", "val_loss", "seed", "epochs"]
    with (path / "results.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for s in range(seeds):
            for i, c in enumerate(C):
                loss = math.exp(lnL(c) + rng.normal(0, noise))
                w.writerow(dict(run_id=f"{path.name}{s}-{i}", status="done", params_total=c / 6e5, tokens=1e5,
                                budget=1e5 * (i + 1), flops=c, val_loss=loss, seed=s,
                                epochs=0 if epochs is None else epochs[i]))  # fmt: skip


def base(c: float) -> float:
    return math.log(1.2 + (1e8 / c) ** 0.3)


def test_compare_dir_finds_each_effect_and_writes_its_files(tmp_path: Path) -> None:
    exp = tmp_path / "exp-x"
    write_variant(tmp_path / "reference", base, seed=0)
    write_variant(exp / "same", base, seed=1)
    write_variant(exp / "shifted", lambda c: base(c) + 0.05, seed=2)
    x_mid = np.log(LADDER_C).mean()
    write_variant(exp / "shallower", lambda c: base(c) + 0.03 * (math.log(c) - x_mid), seed=3)
    epochs = 2.0 ** np.linspace(0, 4, 9)
    write_variant(exp / "repeated", lambda c: base(c) + 0.3 * float(repetition_cost(
        np.interp(math.log(c), np.log(LADDER_C), epochs) - 1, 3.0)), epochs=epochs, seed=4)  # fmt: skip
    record_experiment(exp, reference="base", reference_dir=str(tmp_path / "reference"), rules=RULES)
    c = compare_dir(exp)
    by = {r.name: r for r in c.results}
    assert c.reference == "base" and set(by) == {"same", "shifted", "shallower", "repeated"}
    verdicts = {k: v.judgement.verdict for k, v in by.items()}
    assert verdicts == {"same": NONE, "shifted": OFFSET, "shallower": SLOPE, "repeated": TOP}
    assert c.verdict == TOP
    assert by["shifted"].test.offset.interval(0.95)[0] < 0.05 < by["shifted"].test.offset.interval(0.95)[1]
    assert by["repeated"].repetition.r_star_ci[0] < 3.0 < by["repeated"].repetition.r_star_ci[1]
    assert by["same"].repetition is None and by["same"].test.seeds.tolist() == [0, 1, 2]
    assert min(by["same"].calibration.values()) > 0.9  # little noise: the rule is right nearly always
    md = (exp / "comparison.md").read_text()
    assert md.startswith("# Experiment exp-x: changes at the top")
    assert "| shifted | changes the offset (worse) | 3 |" in md and "R* = " in md
    data = json.loads((exp / "comparison.json").read_text())
    assert data["rules"] == asdict(RULES) and data["variants"][0]["budgets"]["C"][0] == pytest.approx(1.16e9)
    assert (exp / "comparison.png").stat().st_size > 0


def test_rules_recorded_before_the_runs_are_the_ones_used(tmp_path: Path) -> None:
    write_variant(tmp_path / "a", base, seed=0)
    write_variant(tmp_path / "b", lambda c: base(c) + 0.015, seed=1)
    loose = replace(RULES, min_offset=0.02, min_top=0.03)
    record_experiment(tmp_path, reference="a", reference_dir="", rules=loose)
    c = compare_dir(tmp_path)
    assert c.rules == loose and c.results[0].judgement.verdict != OFFSET  # 1.5% < the recorded 2%
    with pytest.raises(FitError, match="fixed before these runs"):
        record_experiment(tmp_path, reference="a", reference_dir="", rules=RULES)


def test_the_tuning_recorded_before_the_runs_is_shown_and_checked_for_one_procedure(tmp_path: Path) -> None:
    write_variant(tmp_path / "a", base, seed=0)
    write_variant(tmp_path / "b", lambda c: base(c) + 0.05, seed=1)
    rule = {"lr": 0.01, "lr_rule": "inverse_width", "lr_ref_width": 32}
    scanned = {"procedure": "lr_scan", "grid": {"widths": [32, 72]}, "optimum": [0.0104, 0.005], "rule": rule}
    tuning = {"a": {**scanned, "scanned": "llama"}, "b": {**scanned, "scanned": "lstm"}}
    record_experiment(tmp_path, reference="a", reference_dir="", rules=RULES, tuning=tuning)
    c = compare_dir(tmp_path)
    data = json.loads((tmp_path / "comparison.json").read_text())
    assert data["tuning"] == tuning and data["tuning_procedure"] == c.tuning_procedure == "lr_scan"
    md = (tmp_path / "comparison.md").read_text()
    assert "Every arm was tuned by the same procedure: lr_scan." in md
    assert "| b | lr_scan | lstm | 32: 0.01, 72: 0.005 | peak LR 0.01 x min(1, 32 / width)^1 |" in md
    untuned = {"a": tuning["a"], "b": {"procedure": "none", "rule": {**rule, "lr_ref_width": 64}}}
    record_experiment(tmp_path, reference="a", reference_dir="", rules=RULES, tuning=untuned)
    assert compare_dir(tmp_path).tuning_procedure is None
    assert "**The arms were not tuned by the same procedure**" in (tmp_path / "comparison.md").read_text()


def test_compare_lists_what_it_cannot_compare_and_needs_its_reference(tmp_path: Path) -> None:
    write_variant(tmp_path / "a", base, seed=0)
    write_variant(tmp_path / "far", base, C=LADDER_C * 1e4, seed=1)
    c = compare_dir(tmp_path)  # no experiment.json: the first variant by name is the reference
    assert c.reference == "a" and "no budget and seed shared" in c.failed["far"]
    assert "| far | not compared:" in (tmp_path / "comparison.md").read_text()
    with pytest.raises(FitError, match="no results.csv of the reference 'nope'"):
        compare_dir(tmp_path, reference="nope")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """key=value like the other entry points; the terminal gets the summary, comparison.md the Markdown."""
    write_variant(tmp_path / "a", base, seed=0)
    write_variant(tmp_path / "b", lambda c: base(c) + 0.05, seed=1)
    assert main([f"dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("  b ")]
    assert line.endswith("changes the offset (worse)") and "offset +0.05" in out and "|" not in out
    assert "| b | changes the offset (worse) |" in (tmp_path / "comparison.md").read_text()
    assert main([f"dir={tmp_path / 'nothing'}"]) == 1
    assert "no results.csv of the reference" in capsys.readouterr().err
    for argv, error in (
        ([str(tmp_path)], f"{tmp_path}: not an argument here; allowed: dir=..., reference=..."),
        (["reference=a"], "dir: required"),
        ([f"dir={tmp_path}", "levels=2"], "levels=2: not an"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"config error: {error}") and err.count("\n") == 1


# --------------------------------------------------------------------------------------------------
# the measured experiments (docs/experiments.md), from their result tables

DATA = Path(__file__).parent / "data" / "experiments"
LADDER_REF = "ladder-reference"
MEASURED_EXPERIMENTS = {  # experiment: (reference table, {variant: (verdict, offset, slope, top)})
    "architecture": (LADDER_REF, {"lstm": (OFFSET, -0.123, -0.010, -0.147)}),
    "conditioning": (LADDER_REF, {"sgd": (SLOPE, 0.083, 0.012, 0.081)}),
    "data_quality": (LADDER_REF, {"noisy": (SLOPE, 0.155, 0.029, 0.233)}),
    "data_quantity": (LADDER_REF, {"repeated": (TOP, 0.076, 0.041, 0.343)}),
    "objective": (LADDER_REF, {"last_token": (SLOPE, 0.310, 0.034, 0.397)}),
    "proportion": (
        "proportion-balanced",
        {"data_only": (OFFSET, 0.017, -0.000, 0.038), "model_only": (TOP, 0.002, 0.008, 0.021)},
    ),
}


@pytest.mark.parametrize("experiment", list(MEASURED_EXPERIMENTS))
def test_the_measured_experiments_comparisons(tmp_path: Path, experiment: str) -> None:
    from harness import store

    reference, expected = MEASURED_EXPERIMENTS[experiment]
    exp = tmp_path / f"exp-{experiment}"
    for name, table in [("ref", reference), *((v, f"{experiment}-{v}") for v in expected)]:
        d = tmp_path / "ref" if name == "ref" else exp / name
        d.mkdir(parents=True)
        (d / "results.csv").write_bytes((DATA / f"{table}.csv").read_bytes())
        store.write_json(d / "sweep.json", {"config": {"fit": {"bootstrap": 50}}})
    record_experiment(exp, reference="reference", reference_dir=str(tmp_path / "ref"), rules=RULES)
    c = compare_dir(exp)
    for r in c.results:
        verdict, offset, slope, top = expected[r.name]
        assert r.judgement.verdict == verdict and r.test.seeds.tolist() == [0, 1, 2, 3]
        got = (r.test.offset.value, r.test.slope.value, r.test.top.value)
        assert got == pytest.approx((offset, slope, top), abs=1e-3)
        assert min(r.calibration[t] for t in ("offset", "slope", "damage at the top")) >= 0.95
    if experiment == "data_quantity":
        rep = c.results[0].repetition
        assert rep.onset == pytest.approx(5.66, abs=0.01) and rep.at_bound  # Muennighoff's form does not fit
