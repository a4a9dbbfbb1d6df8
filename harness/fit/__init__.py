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
    sigma  a run's relative noise, the standard deviation of log L

Approaches (Hoffmann et al. section 3):
    1  the compute frontier L(C) = E + (C0/C)^alpha through each IsoFLOP budget's fitted minimum
       (without budgets: the lower envelope of the runs); beside it the pure power law (E = 0) and,
       from training curves, Kaplan's envelope of all eval points
    2  IsoFLOP profiles: a parabola of L in log N through each budget's near-minimum window -> a, b
    3  the parametric L(N, D) = E + A/N^alpha + B/D^beta, Huber on log residuals
plus Kaplan's L(N) and L(D), a bootstrap that redraws every run's loss from its measured noise, a
hold-out prediction of the top budgets, a verdict in units of that noise, and its error rates on
simulated sweeps of the same design (calibration). The rules and why: docs/fit.md.

Public API (what the rest of the harness calls):
    Observations             the runs as arrays (+ budget labels, seeds, val_loss_se, declared design)
    fit_sweep(obs, cfg)      every analysis -> FitReport; FitReport.to_dict() is fit.json
    frontier_bootstrap(obs, cfg)  the frontier law and its bootstrap samples (E, C0, alpha), the
                             same numbers and intervals as fit_sweep's (for comparisons of variants)
    power_law_values(params, x)   THE evaluator of E + (C0/x)^alpha for rows of (E, C0, alpha)
    power_law_band(params, x, ci) its pointwise percentile band over bootstrap samples
    Intervals                bounds + reliable flags + failed share (percentile intervals: harness.stats)
    FitError                 input a law cannot be fitted to (one-line message)
    jsonable(obj)            numpy -> plain JSON types (non-finite -> None)
    LossSurface, PowerLaw    the closed forms; harness.fit.simulate draws sweeps from them
Modules, in the order of work: observations (runs -> points: canonical order, duplicates,
replicates), budgets (declared or guessed), noise, parametric, isoflop, frontier, holdout,
verdict, engine (the verdict's pipeline on many rows of losses at once), bootstrap, intervals,
calibration, prepare, sections, analysis (fit_sweep), result (FitReport, fit.json); laws and solve
underneath. All pure: no torch, no hydra, no files, no plots.
"""

from harness.fit.analysis import fit_sweep, frontier_bootstrap
from harness.fit.intervals import Intervals
from harness.fit.laws import FitError, LossSurface, PowerLaw, power_law_band, power_law_values
from harness.fit.observations import Observations
from harness.fit.result import FitReport, jsonable

__all__ = [
    "FitError",
    "FitReport",
    "Intervals",
    "LossSurface",
    "Observations",
    "PowerLaw",
    "fit_sweep",
    "frontier_bootstrap",
    "jsonable",
    "power_law_band",
    "power_law_values",
]
