"""report.md: every number of a FitReport with its unit, interval and meaning, and the verdict sentence.

One function per section; an interval whose bootstrap failed too often, or that excludes its own
estimate, is printed as unreliable (harness.fit.intervals), never as a plain interval.
"""

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


def _conventions(r: FitReport) -> list[str]:
    obs, p = r.obs, r.points
    n_conv = "total parameters" if obs.params == "total" else "non-embedding parameters (Kaplan's N)"
    lines = [
        "## Units and conventions",
        "",
        f"- runs fitted: {r.n_runs} ({p.size} distinct configurations"
        + (f", {len(p.duplicates)} exact duplicates counted once" if p.duplicates else "")
        + (f", {int((p.k > 1).sum())} replicated and averaged" if (p.k > 1).any() else "")
        + f"); excluded: {len(r.excluded)} (listed below)",
        f"- N: {n_conv}; D: training tokens; C: training FLOPs, {FLOP_WORDS.get(obs.flops, obs.flops)}",
        "- L: validation cross-entropy in nats/token (natural log)",
        f"- design and budgets: {r.budgets.rule}",
        f"- noise: {r.noise.detail}",
        f"- intervals: {r.bootstrap.ci:.0%} percentile intervals over {r.bootstrap.resamples} bootstrap "
        f"resamples (seed {r.bootstrap.seed}; {r.bootstrap.scheme}); an interval is marked unreliable when "
        "more than 10% of its resamples failed or it excludes its own estimate",
    ]
    return lines + [f"- note: {n}" for n in obs.notes] + [""]


def _verdict(r: FitReport) -> list[str]:
    lines = ["## Verdict", "", "| check | result |", "|---|---|"]
    for name, sentence in zip(r.verdict.checks, r.verdict.reasons, strict=True):
        lines.append(f"| {name} | {'pass' if r.verdict.checks[name] else 'FAIL'}: {sentence} |")
    c = r.calibration
    if c is not None:
        lines += [
            "",
            f"How often this verdict is wrong on this design: {c.draws} simulated sweeps per law with the "
            f"sweep's own N, D, budgets and noise ({_pct(c.noise)}, from {c.noise_source}): "
            f'false "no" {_pct(c.false_no)} over the smooth laws, false "yes" {_pct(c.false_yes)} over '
            "the non-smooth ones.",
            *_weight(r),
            "",
            '| simulated law | smooth | share judged "yes" |',
            "|---|---|---|",
        ]
        lines += [
            f"| {c.descriptions[name]} | {'yes' if name.startswith('smooth') else 'no'} | {_pct(rate)} |"
            for name, rate in c.yes_rate.items()
        ]
    else:
        lines += ["", f"No calibration: {r.skipped.get('calibration', 'not run')}"]
    return lines + [""]


def _weight(r: FitReport) -> list[str]:
    """The sentence saying whether the checks' yes or no stands on this design's calibration."""
    v = r.verdict
    if v.likelihood_ratio is None:
        return []
    named = "smooth" if v.checked == "yes" else "bent"
    stands = "it stands" if v.outcome == v.checked else 'the verdict is "untested"'
    return [
        f'The checks\' "{v.checked}" is {_g(v.likelihood_ratio, 3)} times likelier from a {named} law than '
        f"from the others on this design; it needs {r.rules.min_likelihood_ratio:g} "
        f"(harness.fit.rules): {stands}."
    ]


def _frontier(r: FitReport, pct: str) -> list[str]:
    f = r.frontier
    lines = ["## Compute frontier (Chinchilla approach 1, Kaplan L(C))", ""]
    if f is None:
        return lines + [f"Not fitted: {r.skipped.get('frontier')}", ""]
    where = (
        "each compute budget's fitted minimum (the near-minimum parabola's vertex; its best run where "
        "the minimum is not bracketed: " + f"{sum(s == 'best run' for s in r.frontier_source)} of {f.x.size})"
        if r.budgets.isoflop
        else "the runs on the lower envelope of loss against compute (each beats every cheaper run)"
    )
    d = r.per_decade
    lines += [
        f"L(C) = E + (C0/C)^alpha fitted by least squares on log L to {f.x.size} points: {where}.",
        "",
        f"| number | value | {pct} interval | meaning |",
        "|---|---|---|---|",
        f"| E | {_g(f.law.E)} nats/token | {_ci(f.ci, 'E')} "
        "| irreducible loss: the law's loss with unlimited compute |",
        f"| C0 | {_g(f.law.x0)} FLOPs | {_ci(f.ci, 'C0')} "
        "| compute at which the reducible loss is 1 nat/token |",
        f"| alpha | {_g(f.law.alpha)} | {_ci(f.ci, 'alpha')} | the reducible loss L - E falls as C^-alpha |",
        f"| cut per decade | {_pct(d.cut)} | {_ci_pct(d.ci, 'cut')} "
        "| a tier: the share of the reducible loss each 10x of compute removes, 1 - 10^-alpha |",
        f"| nats per decade at the top | {_g(d.nats)} nats/token | {_ci(d.ci, 'nats')} | what the last 10x "
        f"bought: L(C/10) - L(C) at C = {_g(d.C_top)} FLOPs |",
        f"| R^2 | {_g(f.r2, 5)} | | share of the variance of log L on the frontier the law explains |",
        f"| largest relative residual | {_pct(f.max_rel_residual)} | | largest abs(L_fit - L) / L |",
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
    return lines


def _kaplan(r: FitReport) -> list[str]:
    lines = ["## Kaplan L(N) and L(D)", ""]
    for fit, what, unit, key, skip in (
        (r.kaplan_N, "L(N) = E + (N0/N)^alpha at the largest token budget", "params", "N0", "kaplan_L_N"),
        (r.kaplan_D, "L(D) = E + (D0/D)^alpha over the largest model", "tokens", "D0", "kaplan_L_D"),
    ):
        if fit is None:
            lines += [f"- {what}: not fitted ({r.skipped.get(skip)})"]
        else:
            lines += [
                f"- {what} ({fit.x.size} runs): E = {_g(fit.law.E)} {_ci(fit.ci, 'E')} nats/token, "
                f"{key} = {_g(fit.law.x0)} {_ci(fit.ci, key)} {unit}, alpha = {_g(fit.law.alpha)} "
                f"{_ci(fit.ci, 'alpha')}, R^2 = {_g(fit.r2, 5)}"
            ]
    return lines + [""]


def _isoflop(r: FitReport, pct: str) -> list[str]:
    lines = ["## IsoFLOP profiles (Chinchilla approach 2)", ""]
    iso = r.isoflop
    if iso is None:
        return lines + [f"Not fitted: {r.skipped.get('isoflop')}", ""]
    lines += [
        f"Per compute budget, a parabola of L in log N through the sizes within a factor {iso.window:g} of "
        "its best run (the near-minimum window); its vertex is N_opt, D_opt is read off the window's runs "
        "by a straight line of log D on log N. N_opt ~ C^a and D_opt ~ C^b by least squares in log-log over "
        "the budgets whose minimum lies inside a window of at least 3 sizes.",
        "",
        f"| number | value | {pct} interval | meaning |",
        "|---|---|---|---|",
        f"| a | {_g(iso.a)} | {_ci(iso.ci, 'a')} | N_opt grows as C^a |",
        f"| b | {_g(iso.b)} | {_ci(iso.ci, 'b')} | D_opt grows as C^b (a + b = 1 when C ~ N D) |",
        f"| D_opt / N_opt | {_g(iso.tokens_per_param)} tokens/param | {_ci(iso.ci, 'tokens_per_param')} "
        "| tokens per parameter at the optimum (geometric mean over budgets) |",
        "",
        f"| budget | C (FLOPs) | sizes | in window | N_opt [{pct}] | D_opt | L at optimum [{pct}] | used |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in iso.budgets:
        lines.append(
            f"| {b.label} | {_g(b.C)} | {b.n_sizes} | {b.window.size} "
            f"| {_g(b.N_opt)} {_ci(b.ci, 'N_opt', 3)} | {_g(b.D_opt)} | {_g(b.L_front)} {_ci(b.ci, 'L_opt')} "
            f"| {'yes' if b.used else 'no: ' + b.note} |"
        )
    return lines + [""]


def _parametric(r: FitReport, pct: str) -> list[str]:
    lines = ["## Parametric fit (Chinchilla approach 3)", ""]
    par = r.parametric
    if par is None:
        return lines + [f"Not fitted: {r.skipped.get('parametric')}", ""]
    s = par.surface
    co = par.compute_optimal(float(r.points.C.max()))
    return lines + [
        f"L(N, D) = E + A/N^alpha + B/D^beta over all {par.n_points} points, minimising the Huber loss "
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
        f"| R^2 | {_g(par.r2, 5)} | | of log L over all points |",
        f"| largest relative residual | {_pct(par.max_rel_residual)} | | over all points |",
        "",
    ]


def _holdout(r: FitReport, pct: str) -> list[str]:
    lines = ["## Hold-out prediction", ""]
    h = r.holdout
    if h is None:
        return lines + [f"Not possible: {r.skipped.get('holdout')}", ""]
    lines += [
        f"Held out: the {h.rule}. Each law is fitted to the other frontier points and predicts the "
        f"{len(h.target_C)} held-out frontier point(s); errors are |pred - obs| / obs, z the miss in "
        f"standard deviations of the prediction. The verdict tests the {h.decides} law (fixed in "
        "configs/fit/default.yaml).",
        "",
        f"| law | mean error [{pct}] | max error [{pct}] | max z |",
        "|---|---|---|---|",
    ]
    for name, lp in h.laws.items():
        mark = " (decides)" if name == h.decides else ""
        lines.append(
            f"| {lp.formula}{mark} | {_pct(lp.rel_error)} {_ci_pct(lp.ci, 'rel_error')} "
            f"| {_pct(lp.max_rel_error)} {_ci_pct(lp.ci, 'max_rel_error')} | {_g(lp.max_z, 3)} |"
        )
    lines += [f"| {name}: could not predict | {why} | | |" for name, why in h.failed.items()]
    if h.parametric_rel_error is not None:
        lines.append(
            f"| parametric L(N, D), every held-out run | {_pct(h.parametric_rel_error)} "
            f"| {_pct(h.parametric_max_rel_error)} | |"
        )
    return lines + ([f"- parametric: {h.parametric_note}"] if h.parametric_note else []) + [""]


def _ground_truth(r: FitReport) -> list[str]:
    g = r.ground_truth
    if g is None:
        return []
    lines = [
        "## Ground truth",
        "",
        f"The data source's exact irreducible (Bayes) loss is {_g(g.bayes_loss)} nats/token.",
    ]
    said = {True: "contains it", False: "does NOT contain it", None: "cannot say (no reliable interval)"}
    for what, E, ci, contains in (
        ("frontier", g.E, g.E_ci, g.contains),
        ("parametric", g.parametric_E, g.parametric_E_ci, g.parametric_contains),
    ):
        if E is not None:
            text = "n/a" if ci is None else f"[{_g(ci[0])}, {_g(ci[1])}]"
            lines.append(f"The {what} E = {_g(E)}; its interval {text} {said[contains]}.")
    return lines + [""]


def markdown(
    report: FitReport, *, warnings: list[str] = (), meta: dict | None = None, plots: list[str] = ()
) -> str:
    """report.md: the verdict first, then every fitted number with unit, interval and meaning."""
    r = report
    pct = f"{r.bootstrap.ci:.0%}"
    lines = ["# Scaling-law fit", ""]
    if meta and meta.get("name"):
        lines += [f"Sweep `{meta['name']}`.", ""]
    lines += [f"**{r.verdict.sentence}.**", ""]
    lines += _conventions(r) + _verdict(r) + _frontier(r, pct) + _kaplan(r) + _isoflop(r, pct)
    lines += _parametric(r, pct) + _holdout(r, pct) + _ground_truth(r)
    if r.excluded:
        lines += ["## Excluded runs", ""] + [f"- {rid}: {why}" for rid, why in r.excluded] + [""]
    if r.points.duplicates:
        lines += ["## Duplicate runs (counted once)", ""]
        lines += [f"- {rid}: a copy of {of}" for rid, of in r.points.duplicates] + [""]
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    if r.skipped:
        lines += ["## Skipped", ""] + [f"- {k}: {v}" for k, v in r.skipped.items()] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}](plots/{p}.png)" for p in plots] + [""]
    return "\n".join(lines)
