"""report.md: every number of a FitReport with its unit, interval and meaning, and the verdict sentence."""

from __future__ import annotations

from harness.fit import FitReport
from harness.report.formatting import ci as _ci
from harness.report.formatting import ci_pct as _ci_pct
from harness.report.formatting import g as _g
from harness.report.formatting import pct as _pct

FLOP_WORDS = {
    "full": "full count (matmuls incl. attention and the output head; 3x forward for forward+backward)",
    "6n": "Kaplan's count, 6 N per token",
}


def markdown(
    report: FitReport, *, warnings: list[str] = (), meta: dict | None = None, plots: list[str] = ()
) -> str:
    """report.md: the verdict first, then every fitted number with unit, interval and meaning."""
    r, obs = report, report.obs
    n_conv = "total parameters" if obs.params == "total" else "non-embedding parameters (Kaplan's N)"
    c_conv = FLOP_WORDS.get(obs.flops, obs.flops)
    pct = f"{r.bootstrap.ci:.0%}"
    lines = ["# Scaling-law fit", ""]
    if meta and meta.get("name"):
        lines += [f"Sweep `{meta['name']}`.", ""]
    lines += [f"**{r.verdict.sentence}.**", ""]
    lines += [
        "## Units and conventions",
        "",
        f"- runs fitted: {r.n_runs}; excluded: {len(r.excluded)} (listed below)",
        f"- N: {n_conv}; D: training tokens; C: training FLOPs, {c_conv}",
        "- L: validation cross-entropy in nats/token (natural log)",
        f"- intervals: {pct} bootstrap percentile intervals over {r.bootstrap.resamples} resamples of the "
        "runs "
        f"(drawn with replacement, seed {r.bootstrap.seed}); resamples whose fit failed are dropped: "
        + (", ".join(f"{k} {v}" for k, v in r.bootstrap.failed.items() if v) or "none"),
        f"- budgets: {r.budgets.rule}",
    ]
    lines += [f"- note: {n}" for n in obs.notes]
    lines += ["", "## Verdict", "", "| check | result |", "|---|---|"]
    for name, sentence in zip(r.verdict.checks, r.verdict.reasons, strict=True):
        lines.append(f"| {name} | {'pass' if r.verdict.checks[name] else 'FAIL'}: {sentence} |")
    lines.append("")

    f = r.frontier
    lines += ["## Compute frontier (Chinchilla approach 1, Kaplan L(C))", ""]
    if f is None:
        lines += [f"Not fitted: {r.skipped.get('frontier')}", ""]
    else:
        lines += [
            f"L(C) = E + (C0/C)^alpha fitted by least squares on log L to the {f.x.size} runs on the lower "
            "envelope of loss against compute (each beats every run with less compute"
            + ("; one run per compute budget" if r.budgets.isoflop else "")
            + ").",
            "",
            f"| number | value | {pct} interval | meaning |",
            "|---|---|---|---|",
            f"| E | {_g(f.law.E)} nats/token | {_ci(f.ci, 'E')} "
            "| irreducible loss: the law's loss with unlimited compute |",
            f"| C0 | {_g(f.law.x0)} FLOPs | {_ci(f.ci, 'C0')} "
            "| compute at which the reducible loss is 1 nat/token |",
            f"| alpha | {_g(f.law.alpha)} | {_ci(f.ci, 'alpha')} "
            "| the reducible loss L - E falls as C^-alpha |",
            f"| R^2 | {_g(f.r2, 5)} | | share of the variance of log L on the frontier the law explains |",
            f"| largest relative residual | {_pct(f.max_rel_residual)} "
            "| | largest abs(L_fit - L) / L over the frontier points |",
            "",
        ]
        p = r.power_law
        if p is not None:
            lines += [
                f"For comparison, the pure power law L = (C0/C)^alpha (no floor E) on the same points: "
                f"alpha = {_g(p.law.alpha)} {_ci(p.ci, 'alpha')}, C0 = {_g(p.law.x0)} FLOPs, "
                f"R^2 = {_g(p.r2, 5)}, largest relative residual {_pct(p.max_rel_residual)}.",
                "",
            ]
        fc = r.frontier_curves
        if fc is not None:
            lines += [
                f"Envelope of every evaluation of every training curve (Kaplan's L(C), {fc.x.size} points): "
                f"E = {_g(fc.law.E)} {_ci(fc.ci, 'E')}, alpha = {_g(fc.law.alpha)} {_ci(fc.ci, 'alpha')}, "
                f"R^2 = {_g(fc.r2, 5)}. Mid-run evaluations are taken before the learning rate has "
                "decayed, so this envelope lies above the end-of-run one.",
                "",
            ]
    m = r.monotonicity
    lines += [
        f"Monotonicity: each budget's best loss against the best of every cheaper budget; the largest "
        f"change is {_pct(m.worst_rise)}{' at ' + m.worst_label if m.worst_label else ''} "
        f"(a rise above {_pct(m.tolerance)} fails): {'monotone' if m.monotone else 'NOT monotone'}.",
        "",
    ]

    lines += ["## Kaplan L(N) and L(D)", ""]
    for fit, what, unit, key, skip in (
        (
            r.kaplan_N,
            "L(N) = E + (N0/N)^alpha over the runs at the largest token budget",
            "params",
            "N0",
            "kaplan_L_N",
        ),
        (
            r.kaplan_D,
            "L(D) = E + (D0/D)^alpha over the runs of the largest model",
            "tokens",
            "D0",
            "kaplan_L_D",
        ),
    ):
        if fit is None:
            lines += [f"- {what}: not fitted ({r.skipped.get(skip)})"]
        else:
            lines += [
                f"- {what} ({fit.x.size} runs): E = {_g(fit.law.E)} {_ci(fit.ci, 'E')} nats/token, "
                f"{key} = {_g(fit.law.x0)} {_ci(fit.ci, key)} {unit}, alpha = {_g(fit.law.alpha)} "
                f"{_ci(fit.ci, 'alpha')}, R^2 = {_g(fit.r2, 5)}"
            ]
    lines.append("")

    lines += ["## IsoFLOP profiles (Chinchilla approach 2)", ""]
    iso = r.isoflop
    if iso is None:
        lines += [f"Not fitted: {r.skipped.get('isoflop')}", ""]
    else:
        lines += [
            "Per compute budget, a parabola of L in log N; its vertex is the compute-optimal size N_opt, and "
            "D_opt is read off the budget's runs by a straight line of log D on log N. Then N_opt ~ C^a and "
            "D_opt ~ C^b by least squares in log-log.",
            "",
            f"| number | value | {pct} interval | meaning |",
            "|---|---|---|---|",
            f"| a | {_g(iso.a)} | {_ci(iso.ci, 'a')} | N_opt grows as C^a |",
            f"| b | {_g(iso.b)} | {_ci(iso.ci, 'b')} | D_opt grows as C^b (a + b = 1 when C ~ N D) |",
            f"| D_opt / N_opt | {_g(iso.tokens_per_param)} tokens/param | {_ci(iso.ci, 'tokens_per_param')} "
            "| tokens per parameter at the optimum (geometric mean over budgets) |",
            "",
            "| budget | C (FLOPs) | runs | sizes | N_opt | D_opt | L at optimum | used |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for b in iso.budgets:
            lines.append(
                f"| {b.label} | {_g(b.C)} | {b.index.size} | {b.n_sizes} | {_g(b.N_opt)} | {_g(b.D_opt)} "
                f"| {_g(b.L_opt)} | {'yes' if b.used else 'no: ' + b.note} |"
            )
        lines.append("")

    lines += ["## Parametric fit (Chinchilla approach 3)", ""]
    par = r.parametric
    if par is None:
        lines += [f"Not fitted: {r.skipped.get('parametric')}", ""]
    else:
        s = par.surface
        co = par.compute_optimal(float(obs.C.max()))
        lines += [
            f"L(N, D) = E + A/N^alpha + B/D^beta over all {par.n_points} runs, minimising the Huber loss "
            f"(delta = {par.delta:g}) of log-space residuals from a grid of starts with L-BFGS-B "
            "(Hoffmann et al. 2022, appendix D.2).",
            "",
            f"| number | value | {pct} interval | meaning |",
            "|---|---|---|---|",
            f"| E | {_g(s.E)} nats/token | {_ci(par.ci, 'E')} | irreducible loss |",
            f"| A | {_g(s.A)} | {_ci(par.ci, 'A')} | size term A/N^alpha, nats/token |",
            f"| alpha | {_g(s.alpha)} | {_ci(par.ci, 'alpha')} | size exponent |",
            f"| B | {_g(s.B)} | {_ci(par.ci, 'B')} | data term B/D^beta, nats/token |",
            f"| beta | {_g(s.beta)} | {_ci(par.ci, 'beta')} | data exponent |",
            f"| a = beta/(alpha+beta) | {_g(s.a)} | {_ci(par.ci, 'a')} | implied N_opt ~ C^a |",
            f"| b = alpha/(alpha+beta) | {_g(s.b)} | {_ci(par.ci, 'b')} | implied D_opt ~ C^b |",
            f"| N_opt at C = {_g(co['C'])} | {_g(co['N_opt'])} params | {_ci(par.ci, 'N_opt')} "
            f"| compute-optimal size at the sweep's largest compute, with C = {_g(par.k)} N D |",
            f"| D_opt there | {_g(co['D_opt'])} tokens | {_ci(par.ci, 'D_opt')} | |",
            f"| D_opt / N_opt there | {_g(co['tokens_per_param'])} | {_ci(par.ci, 'tokens_per_param')} | |",
            f"| R^2 | {_g(par.r2, 5)} | | of log L over all runs |",
            f"| largest relative residual | {_pct(par.max_rel_residual)} | | over all runs |",
            "",
        ]

    lines += ["## Hold-out prediction", ""]
    h = r.holdout
    if h is None:
        lines += [f"Not possible: {r.skipped.get('holdout')}", ""]
    else:
        lines += [
            f"Held out: the {h.rule}. The frontier fitted on the other runs predicts the held-out frontier "
            f"point(s) (held-out runs that beat every cheaper run); errors are |pred - obs| / obs.",
            "",
            f"| number | value | {pct} interval |",
            "|---|---|---|",
            f"| frontier: mean relative error | {_pct(h.rel_error)} | {_ci_pct(h.ci, 'rel_error')} |",
            f"| frontier: max relative error | {_pct(h.max_rel_error)} | {_ci_pct(h.ci, 'max_rel_error')} |",
        ]
        if h.parametric is not None:
            lines += [
                f"| parametric, every held-out run: mean | {_pct(h.parametric_rel_error)} "
                f"| {_ci_pct(h.ci, 'parametric_rel_error')} |",
                f"| parametric: max | {_pct(h.parametric_max_rel_error)} "
                f"| {_ci_pct(h.ci, 'parametric_max_rel_error')} |",
            ]
        lines += [""] + [f"- {n}" for n in h.notes] + ([""] if h.notes else [])

    g = r.ground_truth
    if g is not None:
        lines += ["## Ground truth", ""]
        lines += [f"The data source's exact irreducible (Bayes) loss is {_g(g.bayes_loss)} nats/token."]
        said = {True: "contains it", False: "does NOT contain it", None: "cannot say (no interval)"}
        if g.E is not None:
            lines += [
                f"The frontier's E = {_g(g.E)}; its interval {_ci({'E': g.E_ci} if g.E_ci else {}, 'E')} "
                f"{said[g.contains]}."
            ]
        if g.parametric_E is not None:
            pci = {"E": g.parametric_E_ci} if g.parametric_E_ci else {}
            lines += [
                f"The parametric E = {_g(g.parametric_E)}; its interval {_ci(pci, 'E')} "
                f"{said[g.parametric_contains]}."
            ]
        lines.append("")

    if r.excluded:
        lines += ["## Excluded runs", ""] + [f"- {rid}: {why}" for rid, why in r.excluded] + [""]
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    skipped = {k: v for k, v in r.skipped.items()}
    if skipped:
        lines += ["## Skipped", ""] + [f"- {k}: {v}" for k, v in skipped.items()] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}](plots/{p}.png)" for p in plots] + [""]
    return "\n".join(lines)
