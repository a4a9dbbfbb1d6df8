"""The scaling-law fitter: pure numpy/scipy, from a sweep's runs to numbers and a verdict.

Symbols (Kaplan et al. 2020, Hoffmann et al. 2022 "Chinchilla"):
    N      model parameters of a run (total or non-embedding: `Observations.params` says which)
    D      training tokens seen by a run
    C      training compute in FLOPs (full count or Kaplan's 6N-per-token count: `Observations.flops`)
    L      validation loss, nats/token (natural-log cross-entropy)
    E      irreducible loss: L in the limit of unbounded N, D or C
    A, alpha   size term A / N^alpha;      B, beta   data term B / D^beta
    C0     scale of the frontier L(C) = E + (C0/C)^alpha (N0, D0: of Kaplan's L(N), L(D))
    a, b   exponents of the compute-optimal N_opt ~ C^a, D_opt ~ C^b
    G      N_opt = G (C/k)^a, D_opt = G^-1 (C/k)^b with C = k N D (k = 6 for Kaplan's count)

Approaches (Hoffmann et al. section 3):
    1  `fit_frontier`: L(C) = E + (C0/C)^alpha on the lower envelope of (C, L); beside it the pure
       power law (E = 0) and, from training curves, Kaplan's envelope of all eval points
    2  `fit_isoflop`: parabola of L in log N per compute budget -> N_opt, D_opt -> a, b
    3  `fit_parametric`: L(N, D) = E + A/N^alpha + B/D^beta, Huber on log residuals, L-BFGS-B
plus Kaplan's L(N) at the largest token budget and L(D) at the largest model (`fit_kaplan`), a
bootstrap over runs for every number, a hold-out prediction of the most expensive runs, and a
verdict (`fit_sweep`). Modules: laws (closed forms, FitError), solve (batched Gauss-Newton),
frontier, isoflop, parametric, holdout, bootstrap, analysis (Observations, FitReport, fit_sweep),
synthetic (sweeps drawn from a known LossSurface, for tests and benchmarks). All pure: no torch,
no files, no plots; `python -m harness.fit` (__main__) is the command line around them.
"""

from harness.fit.analysis import FitReport, GroundTruth, Observations, Verdict, fit_sweep, jsonable, judge
from harness.fit.bootstrap import BootstrapInfo, intervals, percentile_interval, resample_counts
from harness.fit.frontier import (
    Budgets,
    LawFit,
    Monotonicity,
    check_monotone,
    envelope_weights,
    fit_frontier,
    fit_kaplan,
    fit_offset_power_law,
    fit_power_law,
    frontier_envelope,
    group_budgets,
    refit_offset_power_law,
    refit_power_law,
)
from harness.fit.holdout import Holdout, fit_holdout, split_holdout
from harness.fit.isoflop import IsoflopBudget, IsoflopFit, fit_isoflop, refit_isoflop
from harness.fit.laws import FitError, LossSurface, PowerLaw, max_rel_residual, r2_log
from harness.fit.parametric import HUBER_DELTA, ParametricFit, fit_parametric, refit_parametric

__all__ = [
    "HUBER_DELTA",
    "BootstrapInfo",
    "Budgets",
    "FitError",
    "FitReport",
    "GroundTruth",
    "Holdout",
    "IsoflopBudget",
    "IsoflopFit",
    "LawFit",
    "LossSurface",
    "Monotonicity",
    "Observations",
    "ParametricFit",
    "PowerLaw",
    "Verdict",
    "check_monotone",
    "envelope_weights",
    "fit_frontier",
    "fit_holdout",
    "fit_isoflop",
    "fit_kaplan",
    "fit_offset_power_law",
    "fit_parametric",
    "fit_power_law",
    "fit_sweep",
    "frontier_envelope",
    "group_budgets",
    "intervals",
    "jsonable",
    "judge",
    "max_rel_residual",
    "percentile_interval",
    "r2_log",
    "refit_isoflop",
    "refit_offset_power_law",
    "refit_parametric",
    "refit_power_law",
    "resample_counts",
    "split_holdout",
]
