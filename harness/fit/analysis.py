"""A sweep's observations in, every analysis the data allows out: `fit_sweep` and its `FitReport`.

Order of work (`prepare`): merge the runs into points (`observations`); group them into budgets,
declared or guessed (`budgets`); fit the parametric law (approach 3); measure the noise (`noise`);
choose the hold-out; draw the bootstrap's rows of losses (`bootstrap`). Then the verdict's pipeline
runs on the observed row and every drawn one at once (`engine`): IsoFLOP profiles (approach 2), the
compute frontier (approach 1), the hold-out, the checks. Each section (`sections`) reads its number
off row 0 and its interval off the other rows; the calibration (`calibration`) judges simulated
sweeps of the same design. An analysis the data cannot carry is skipped with the reason; only input
no analysis can use raises FitError.
"""

from __future__ import annotations

import numpy as np

from harness.config import FitConfig
from harness.fit.bootstrap import BootstrapInfo
from harness.fit.engine import evaluate_rows
from harness.fit.frontier import LawFit
from harness.fit.holdout import LAWS
from harness.fit.laws import FitError
from harness.fit.observations import Observations
from harness.fit.prepare import draw_rows, prepare_fit
from harness.fit.result import FitReport
from harness.fit.rules import RULES, FitRules
from harness.fit.sections import (
    calibration_section,
    curves_section,
    frontier_section,
    ground_truth,
    holdout_section,
    isoflop_section,
    kaplan_section,
    parametric_section,
    per_decade,
    pure_section,
)
from harness.fit.verdict import judge, weigh


def frontier_bootstrap(
    obs: Observations, cfg: FitConfig, *, bayes_loss: float | None = None, rules: FitRules = RULES
) -> tuple[LawFit, np.ndarray]:
    """The frontier law with the intervals of `fit_sweep` and its bootstrap samples (B, 3) of
    (E, C0, alpha): the same rows of losses, so the same numbers as the sweep's fit.json."""
    prep = prepare_fit(obs, rules, bayes_loss=bayes_loss)
    Y, _, _ = draw_rows(prep, cfg)
    return frontier_section(evaluate_rows(prep.design, Y), cfg)


def fit_sweep(
    obs: Observations, cfg: FitConfig, *, bayes_loss: float | None = None, rules: FitRules = RULES
) -> FitReport:
    """Run every analysis the data allows (see the module docstring); raise FitError on unusable input.

    N and C follow the conventions `obs` records (the caller picked its columns by cfg.params and
    cfg.flops); bayes_loss: the source's known irreducible loss (synthetic data), or None; `rules`:
    the fit's fixed rules (harness.fit.rules; another set only to study rules, as the scripts do).
    """
    prep = prepare_fit(obs, rules, bayes_loss=bayes_loss)
    Y, shifts, rng_cal = draw_rows(prep, cfg)
    rows = evaluate_rows(prep.design, Y)
    skipped = dict(prep.skipped)

    def attempt(section: str, fn, *args):
        try:
            return fn(*args)
        except FitError as exc:
            skipped[section] = str(exc)
            return None

    frontier, samples = attempt("frontier", frontier_section, rows, cfg) or (None, None)
    if frontier is None:
        power = decade = None
        skipped["power_law"] = "no compute frontier (see frontier)"
    else:
        power = attempt("power_law", pure_section, rows, frontier, cfg)
        decade = per_decade(frontier, samples, cfg)
    hold = attempt("holdout", holdout_section, prep, rows, cfg)
    phrase = (
        "" if hold is None else f"fitted without the {hold.rule}, the {hold.decides} law {LAWS[hold.decides]}"
    )
    b = prep.budgets
    verdict = judge(
        rows.checks,
        rules,
        n_frontier=int((rows.frontier.W[0] > 0).sum()),
        budget_labels=b.labels,
        noise=prep.noise.detail,
        holdout=phrase,
        holdout_failed="" if hold is None else hold.failed.get(hold.decides, ""),
        skipped=skipped,
    )
    par = attempt("parametric", parametric_section, prep, Y, cfg) if prep.parametric is not None else None
    calibration = attempt("calibration", calibration_section, prep, rng_cal, cfg)
    if calibration is not None:
        c = calibration
        verdict = weigh(verdict, c.false_no, c.false_yes, c.noise, rules.min_likelihood_ratio)
    return FitReport(
        obs=obs,
        points=prep.points,
        budgets=b,
        noise=prep.noise,
        frontier=frontier,
        frontier_source=tuple(rows.frontier.source[rows.frontier.W[0] > 0]) if frontier is not None else (),
        per_decade=decade,
        power_law=power,
        frontier_curves=attempt("frontier_curves", curves_section, prep, shifts, cfg),
        kaplan_N=attempt("kaplan_L_N", kaplan_section, prep.points, Y, "N", cfg),
        kaplan_D=attempt("kaplan_L_D", kaplan_section, prep.points, Y, "D", cfg),
        isoflop=attempt("isoflop", isoflop_section, prep, rows, cfg),
        parametric=par,
        holdout=hold,
        verdict=verdict,
        calibration=calibration,
        ground_truth=None if bayes_loss is None else ground_truth(float(bayes_loss), frontier, par),
        bootstrap=BootstrapInfo(int(Y.shape[0] - 1), cfg.ci, cfg.seed),
        rules=rules,
        skipped=skipped,
        samples={} if samples is None else {"frontier": samples},
    )
