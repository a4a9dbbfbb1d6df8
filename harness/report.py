"""Results table -> fit -> fit.json, report.md, plots/*.png and a one-screen summary.

`analyse` turns result rows (dicts, as read from results.csv or collected by the sweep; numbers may
be strings) into `harness.fit.Observations` under the conventions FitConfig names, runs
`harness.fit.fit_sweep`, and writes:

    <out>/fit.json      FitReport.to_dict() plus meta and warnings
    <out>/report.md     every number with its unit, interval and meaning, and the verdict sentence
    <out>/plots/loss_vs_compute.png, isoflop.png, optimal_allocation.png, residuals.png
    (and, given the runs' ability scores, an abilities section and plots: harness.abilities)

Only rows with status 'done' (or no status) are fitted; the others are listed as excluded with why.
Nothing is written when the input cannot be fitted: FitError propagates before the first file.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from harness import abilities as ab
from harness.config import FitConfig
from harness.fit import FitError, FitReport, Observations, fit_sweep, jsonable

PLOTS = ("loss_vs_compute", "isoflop", "optimal_allocation", "residuals")
MAX_EPOCHS = 4  # beyond ~4 passes over the data, repeated tokens stop counting as fresh (Muennighoff 2023)
_PARAM_COLUMNS = {"total": "params_total", "nonembedding": "params_nonembedding"}
_FLOP_COLUMNS = {"full": "flops", "6n": "flops_6n"}
_FLOP_WORDS = {
    "full": "full count (matmuls incl. attention and the output head; 3x forward for forward+backward)",
    "6n": "Kaplan's count, 6 N per token",
}


# --------------------------------------------------------------------------------------------------
# rows -> observations


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip() == "")


def _number(row: dict, key: str, where: str) -> float:
    v = row.get(key)
    if _empty(v):
        raise FitError(f"{where}, column {key}: empty")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise FitError(f"{where}, column {key}: {v!r} is not a number") from None
    if x <= 0:  # nan passes: a diverged run's loss, excluded by the caller
        raise FitError(f"{where}, column {key}: {v!r} must be > 0")
    return x


def build_observations(
    rows: list[dict], cfg: FitConfig, *, curves: dict[str, list[dict]] | None = None
) -> tuple[Observations, list[tuple[str, str]], list[str]]:
    """Observations of the fitted rows, (run_id, why) of the excluded ones, and warnings.

    Rows are numbered from 1 in messages (the first row after a CSV's header is row 1). Raises
    FitError naming row and column for a value that is missing, not a number, or not positive in a
    row that would be fitted; a non-finite val_loss (a diverged run) excludes the row instead.
    """
    n_col = _PARAM_COLUMNS[cfg.params]
    c_col = _FLOP_COLUMNS[cfg.flops]
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    missing = [k for k in (n_col, "tokens", "val_loss") if k not in keys]
    if missing:
        raise FitError(f"missing columns: {', '.join(missing)}")
    fitted: list[tuple[int, dict, str]] = []
    excluded: list[tuple[str, str]] = []
    for i, row in enumerate(rows, 1):
        rid = str(row.get("run_id") or f"row{i}")
        status = row.get("status")
        if not _empty(status) and str(status) != "done":
            excluded.append((rid, f"status {status}"))
            continue
        fitted.append((i, row, rid))
    N, D, L, C, ids, budget, warnings = [], [], [], [], [], [], []
    use_6nd = any(_empty(row.get(c_col)) for _, row, _ in fitted)
    for i, row, rid in fitted:
        where = f"row {i}" + ("" if _empty(row.get("run_id")) else f" (run {rid})")
        loss = _number(row, "val_loss", where)
        if not math.isfinite(loss):
            excluded.append((rid, f"val_loss is {row.get('val_loss')} (diverged?)"))
            continue
        n, d = _number(row, n_col, where), _number(row, "tokens", where)
        c = 6.0 * n * d if use_6nd else _number(row, c_col, where)
        for key, v in ((n_col, n), ("tokens", d), (c_col, c)):
            if not math.isfinite(v):
                raise FitError(f"{where}, column {key}: {v} is not finite")
        ids.append(rid)
        N.append(n)
        D.append(d)
        C.append(c)
        L.append(loss)
        budget.append(row.get("budget"))
        ep = row.get("epochs")
        if not _empty(ep):
            try:
                if float(ep) > MAX_EPOCHS:
                    warnings.append(
                        f"run {rid} repeated its training data {float(ep):.3g} times (> {MAX_EPOCHS})"
                    )
            except (TypeError, ValueError):
                pass
    notes = []
    if use_6nd:
        notes.append(
            f"C = 6 N D: column {c_col} (fit.flops={cfg.flops}) is missing, so compute follows Kaplan's count"
        )
    labels = None if any(_empty(b) for b in budget) else np.array([str(b) for b in budget])
    cr, cd, cc, cl = [], [], [], []
    if curves:
        for j, rid in enumerate(ids):
            for ev in curves.get(rid) or []:
                try:
                    d, loss = float(ev.get("tokens")), float(ev.get("val/loss"))
                    c = 6.0 * N[j] * d if use_6nd or _empty(ev.get(c_col)) else float(ev.get(c_col))
                except (TypeError, ValueError):
                    continue  # an eval row without a loss (e.g. a train-only log line)
                if all(math.isfinite(v) and v > 0 for v in (d, loss, c)):
                    cr.append(j)
                    cd.append(d)
                    cc.append(c)
                    cl.append(loss)
    obs = Observations(
        run_id=np.array(ids, dtype=str),
        N=np.array(N),
        D=np.array(D),
        C=np.array(C),
        L=np.array(L),
        budget=labels,
        curve_run=np.array(cr, dtype=int) if cr else None,
        curve_D=np.array(cd) if cr else None,
        curve_C=np.array(cc) if cr else None,
        curve_L=np.array(cl) if cr else None,
        params=cfg.params,
        flops="6n" if use_6nd else cfg.flops,
        notes=tuple(notes),
    )
    return obs, excluded, warnings


def analyse(
    rows: list[dict],
    cfg: FitConfig,
    out_dir: Path,
    *,
    curves: dict[str, list[dict]] | None = None,
    bayes_loss: float | None = None,
    meta: dict | None = None,
    abilities: dict[str, dict] | None = None,
) -> FitReport:
    """Fit the done rows and write fit.json, report.md and plots/ into out_dir; return the report.

    `abilities` maps run ids to their abilities.json (harness.abilities) for the abilities section.
    """
    obs, excluded, warnings = build_observations(rows, cfg, curves=curves)
    report = replace(fit_sweep(obs, cfg, bayes_loss=bayes_loss), excluded=tuple(excluded))
    ability_report = (
        ab.analyse_abilities(
            rows, abilities, n_col=_PARAM_COLUMNS[obs.params], c_col=_FLOP_COLUMNS[obs.flops]
        )
        if abilities
        else None
    )
    write_report(report, Path(out_dir), meta=meta, warnings=warnings, abilities=ability_report)
    return report


# --------------------------------------------------------------------------------------------------
# writing


def write_report(
    report: FitReport,
    out_dir: Path,
    *,
    meta: dict | None = None,
    warnings: list[str] = (),
    abilities: ab.AbilityReport | None = None,
) -> None:
    """fit.json, report.md and the plots of one FitReport (and of the abilities, when given)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    data["warnings"] = list(warnings)
    data["meta"] = jsonable(json.loads(json.dumps(meta or {}, default=str)))
    if abilities is not None:
        data["abilities"] = jsonable(abilities.to_dict())
    (out_dir / "fit.json").write_text(json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")
    plots = write_plots(report, out_dir / "plots")
    text = markdown(report, warnings=warnings, meta=meta or {}, plots=plots)
    if abilities is not None:
        obs = report.obs
        ability_plots = ab.write_plots(
            abilities,
            out_dir / "plots",
            n_label=f"N ({obs.params} params)",
            c_label=f"C (FLOPs, {obs.flops} count)",
        )
        text += "\n" + ab.markdown(abilities, ability_plots)
    (out_dir / "report.md").write_text(text)


def _g(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def _ci(ci: dict, key: str, digits: int = 4) -> str:
    v = ci.get(key)
    return "n/a" if v is None else f"[{_g(v[0], digits)}, {_g(v[1], digits)}]"


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2%}"


def _ci_pct(ci: dict, key: str) -> str:
    v = ci.get(key)
    return "n/a" if v is None else f"[{_pct(v[0])}, {_pct(v[1])}]"


def markdown(
    report: FitReport, *, warnings: list[str] = (), meta: dict | None = None, plots: list[str] = ()
) -> str:
    """report.md: the verdict first, then every fitted number with unit, interval and meaning."""
    r, obs = report, report.obs
    n_conv = "total parameters" if obs.params == "total" else "non-embedding parameters (Kaplan's N)"
    c_conv = _FLOP_WORDS.get(obs.flops, obs.flops)
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


def summary_text(report: FitReport) -> str:
    """A one-screen terminal summary: the main numbers and the verdict."""
    r, obs = report, report.obs
    out = [
        f"scaling-law fit: {r.n_runs} runs ({len(r.excluded)} excluded); N = {obs.params} params, "
        f"C = {obs.flops} FLOPs; {r.bootstrap.ci:.0%} intervals from {r.bootstrap.resamples} resamples"
    ]
    f = r.frontier
    if f is not None:
        out.append(
            f"  frontier    L(C) = {_g(f.law.E)} + ({_g(f.law.x0, 3)}/C)^{_g(f.law.alpha)}   "
            f"E {_ci(f.ci, 'E')}  alpha {_ci(f.ci, 'alpha')}  R^2 {_g(f.r2, 5)}  "
            f"max resid {_pct(f.max_rel_residual)}"
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
        line = f"  holdout     {h.rule}: frontier error {_pct(h.rel_error)} (max {_pct(h.max_rel_error)})"
        if h.parametric_rel_error is not None:
            line += f", parametric {_pct(h.parametric_rel_error)}"
        out.append(line)
    g = r.ground_truth
    if g is not None:
        out.append(
            f"  truth       Bayes loss {_g(g.bayes_loss)} vs frontier E {_g(g.E)} "
            f"{'inside' if g.contains else 'outside' if g.contains is False else 'n/a'} its interval"
        )
    if r.skipped:
        out.append(f"  skipped     {', '.join(r.skipped)}")
    out.append(r.verdict.sentence)
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# plots


def _band(samples: np.ndarray | None, x: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Pointwise interval of E + (C0/x)^alpha over bootstrap samples (E, C0, alpha)."""
    if samples is None or len(samples) < 2:
        return None
    E, C0, alpha = (v[:, None] for v in samples.T)
    with np.errstate(all="ignore"):
        pred = E + np.exp(alpha * (np.log(C0) - np.log(x)[None, :]))
    lo, hi = np.nanquantile(pred, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    return lo, hi


def write_plots(report: FitReport, plot_dir: Path) -> list[str]:
    """Draw the plots that the report's sections allow; return their names (file stems)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    from matplotlib.ticker import ScalarFormatter

    plot_dir.mkdir(parents=True, exist_ok=True)
    r, obs = report, report.obs
    written = []
    c_label = f"compute C (FLOPs, {obs.flops} count)"
    l_label = "validation loss L (nats/token)"
    x = np.geomspace(obs.C.min() / 1.5, obs.C.max() * 1.5, 200)

    fig = Figure(figsize=(7.5, 5.5))
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.1, top=0.93)
    ax = fig.subplots()
    if obs.has_curves:
        for j in np.unique(obs.curve_run):
            m = obs.curve_run == j
            ax.plot(obs.curve_C[m], obs.curve_L[m], color="0.85", lw=0.6, zorder=0)
    sc = ax.scatter(obs.C, obs.L, c=np.log10(obs.N), cmap="viridis", s=16, zorder=2, label="runs")
    fig.colorbar(sc, ax=ax, label=f"log10 N ({obs.params} params)")
    if r.holdout is not None:
        h = r.holdout
        ax.scatter(
            obs.C[h.held],
            obs.L[h.held],
            facecolors="none",
            edgecolors="red",
            s=60,
            zorder=3,
            label=f"held out ({h.held.size})",
        )
        hf = h.frontier
        ax.plot(
            x,
            hf.predict(x),
            color="red",
            ls=":",
            lw=1.2,
            label=f"fit without held-out runs (error {h.max_rel_error:.1%})",
        )
    f = r.frontier
    if f is not None:
        ax.scatter(f.x, f.L, facecolors="none", edgecolors="black", s=90, zorder=4, label="frontier points")
        band = _band(r.samples.get("frontier"), x, r.bootstrap.ci)
        if band is not None:
            ax.fill_between(
                x, *band, color="C1", alpha=0.25, lw=0, label=f"{r.bootstrap.ci:.0%} bootstrap band"
            )
        ax.plot(
            x,
            f.predict(x),
            color="C1",
            lw=2,
            label=f"L = {f.law.E:.3g} + ({f.law.x0:.2g}/C)^{f.law.alpha:.3g}",
        )
        ax.axhline(f.law.E, color="C1", ls="--", lw=0.8)
    if r.frontier_curves is not None:
        fc = r.frontier_curves
        ax.plot(
            x,
            fc.predict(x),
            color="0.45",
            ls="-.",
            lw=1,
            label=f"training-curve envelope fit, alpha={fc.law.alpha:.3g}",
        )
    if r.power_law is not None:
        ax.plot(
            x,
            r.power_law.predict(x),
            color="C2",
            ls="--",
            lw=1,
            label=f"pure power law, alpha={r.power_law.law.alpha:.3g}",
        )
    if r.ground_truth is not None:
        ax.axhline(r.ground_truth.bayes_loss, color="black", ls="-.", lw=0.8, label="Bayes loss (known)")
    ax.set(xscale="log", yscale="log", xlabel=c_label, ylabel=l_label, title=r.verdict.sentence.split(",")[0])
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.legend(fontsize=7, loc="upper right")
    fig.savefig(plot_dir / "loss_vs_compute.png", dpi=110)
    written.append("loss_vs_compute")

    if r.isoflop is not None:
        fig = Figure(figsize=(7.5, 5.5))
        fig.subplots_adjust(left=0.11, right=0.97, bottom=0.1, top=0.93)
        ax = fig.subplots()
        for k, b in enumerate(r.isoflop.budgets):
            color = f"C{k % 10}"
            Nb, Lb = obs.N[b.index], obs.L[b.index]
            ax.scatter(Nb, Lb, color=color, s=16)
            u = np.linspace(np.log(Nb.min()) - 0.1, np.log(Nb.max()) + 0.1, 100) - b.center
            ax.plot(np.exp(u + b.center), np.polyval(b.coeffs, u), color=color, lw=1, label=f"C = {b.C:.3g}")
            if math.isfinite(b.N_opt):
                ax.scatter(
                    [b.N_opt],
                    [b.L_opt],
                    marker="*",
                    s=140,
                    color=color if b.used else "white",
                    edgecolors=color,
                    zorder=4,
                )
        ax.set(
            xscale="log",
            xlabel=f"N ({obs.params} params)",
            ylabel=l_label,
            title=f"IsoFLOP profiles: N_opt ~ C^{r.isoflop.a:.3f} (hollow star: unused)",
        )
        ax.legend(fontsize=7)
        fig.savefig(plot_dir / "isoflop.png", dpi=110)
        written.append("isoflop")

    if r.isoflop is not None or r.parametric is not None:
        fig = Figure(figsize=(10, 4.5))
        fig.subplots_adjust(left=0.08, right=0.97, bottom=0.12, top=0.92, wspace=0.3)
        axes = fig.subplots(1, 2)
        for ax, what in zip(axes, ("N", "D"), strict=True):
            if r.isoflop is not None:
                used = [b for b in r.isoflop.budgets if b.used]
                Cs = np.array([b.C for b in used])
                vals = np.array([b.N_opt if what == "N" else b.D_opt for b in used])
                ax.scatter(Cs, vals, color="C0", zorder=3, label="IsoFLOP minima")
                line = r.isoflop.N_opt(x) if what == "N" else r.isoflop.D_opt(x)
                exp = r.isoflop.a if what == "N" else r.isoflop.b
                ax.plot(x, line, color="C0", label=f"approach 2: ~ C^{exp:.3f}")
            if r.parametric is not None:
                s, k = r.parametric.surface, r.parametric.k
                line = s.N_opt(x, k) if what == "N" else s.D_opt(x, k)
                exp = s.a if what == "N" else s.b
                ax.plot(x, line, color="C3", ls="--", label=f"approach 3: ~ C^{exp:.3f}")
            ax.set(
                xscale="log",
                yscale="log",
                xlabel=c_label,
                ylabel="N_opt (params)" if what == "N" else "D_opt (tokens)",
            )
            ax.legend(fontsize=8)
        fig.savefig(plot_dir / "optimal_allocation.png", dpi=110)
        written.append("optimal_allocation")

    fig = Figure(figsize=(10, 4.5))
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.12, top=0.92, wspace=0.3)
    axes = fig.subplots(1, 2)
    tol = r.thresholds["max_rel_residual"]
    if f is not None:
        axes[0].scatter(f.x, f.L / f.predict(f.x) - 1, color="C1")
    axes[0].set(xscale="log", xlabel=c_label, ylabel="L / L_fit - 1", title="frontier residuals")
    if r.parametric is not None:
        res = obs.L / r.parametric.surface.loss(obs.N, obs.D) - 1
        sc = axes[1].scatter(obs.C, res, c=np.log10(obs.N), cmap="viridis", s=14)
        fig.colorbar(sc, ax=axes[1], label="log10 N")
    axes[1].set(
        xscale="log", xlabel=c_label, ylabel="L / L_fit - 1", title="parametric L(N, D) residuals, all runs"
    )
    for ax in axes:
        ax.axhline(0, color="black", lw=0.6)
        for sgn in (-1, 1):
            ax.axhline(sgn * tol, color="red", ls=":", lw=0.8)
    fig.savefig(plot_dir / "residuals.png", dpi=110)
    written.append("residuals")
    return written
