"""The one-screen terminal summary of a FitReport."""

from __future__ import annotations

from harness.fit import FitReport
from harness.report.formatting import ci as _ci
from harness.report.formatting import ci_pct as _ci_pct
from harness.report.formatting import g as _g
from harness.report.formatting import pct as _pct


def summary_text(report: FitReport) -> str:
    """A one-screen terminal summary: the main numbers and the verdict."""
    r, obs = report, report.obs
    out = [
        f"scaling-law fit: {r.n_runs} runs ({len(r.excluded)} excluded); N = {obs.params} params, "
        f"C = {obs.flops} FLOPs; {r.bootstrap.ci:.0%} intervals from {r.bootstrap.resamples} resamples"
    ]
    f = r.frontier
    if f is not None:
        d = r.per_decade
        out.append(
            f"  frontier    L(C) = {_g(f.law.E)} + ({_g(f.law.x0, 3)}/C)^{_g(f.law.alpha)}   "
            f"E {_ci(f.ci, 'E')}  alpha {_ci(f.ci, 'alpha')}  R^2 {_g(f.r2, 5)}  "
            f"max resid {_pct(f.max_rel_residual)}"
        )
        out.append(
            f"  per decade  each 10x of compute cuts the reducible loss by {_pct(d.cut)} "
            f"{_ci_pct(d.ci, 'cut')}; the last 10x bought {_g(d.nats, 3)} nats {_ci(d.ci, 'nats', 3)}"
        )
    else:
        out.append(f"  frontier    not fitted: {r.skipped.get('frontier')}")
    if r.power_law is not None:
        out.append(
            f"  power law   L(C) = ({_g(r.power_law.law.x0, 3)}/C)^{_g(r.power_law.law.alpha)}  "
            f"R^2 {_g(r.power_law.r2, 5)}"
        )
    if r.isoflop is not None:
        i = r.isoflop
        out.append(
            f"  isoflop     N_opt ~ C^{_g(i.a, 3)} {_ci(i.ci, 'a', 3)}  D_opt ~ C^{_g(i.b, 3)} "
            f"{_ci(i.ci, 'b', 3)}  D/N = {_g(i.tokens_per_param, 3)}"
        )
    if r.parametric is not None:
        s, p = r.parametric.surface, r.parametric
        out.append(
            f"  parametric  L = {_g(s.E)} + {_g(s.A)}/N^{_g(s.alpha, 3)} + {_g(s.B)}/D^{_g(s.beta, 3)}  "
            f"alpha {_ci(p.ci, 'alpha', 3)}  beta {_ci(p.ci, 'beta', 3)}"
        )
    for fit, name in ((r.kaplan_N, "L(N)"), (r.kaplan_D, "L(D)")):
        if fit is not None:
            out.append(
                f"  kaplan {name} E = {_g(fit.law.E)}, "
                f"alpha = {_g(fit.law.alpha, 3)} {_ci(fit.ci, 'alpha', 3)}"
            )
    h = r.holdout
    if h is not None:
        errors = ", ".join(f"{name} {_pct(lp.max_rel_error)}" for name, lp in h.laws.items())
        line = f"  holdout     {h.rule}: max error {errors} ({h.decides} decides)"
        if h.parametric_rel_error is not None:
            line += f", parametric {_pct(h.parametric_max_rel_error)}"
        out.append(line)
    g = r.ground_truth
    if g is not None:
        out.append(
            f"  truth       Bayes loss {_g(g.bayes_loss)} vs frontier E {_g(g.E)} "
            + {True: "inside its interval", False: "outside its interval"}.get(
                g.contains, "(no reliable interval)"
            )
        )
    c = r.calibration
    if c is not None:
        out.append(
            f"  calibration on this design at {_pct(c.noise)} noise: false no {_pct(c.false_no)}, "
            f"false yes {_pct(c.false_yes)}"
        )
    if r.skipped:
        out.append(f"  skipped     {', '.join(r.skipped)}")
    out.append(r.verdict.sentence)
    return "\n".join(out)
