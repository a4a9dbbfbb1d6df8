"""The comparison as Markdown (comparison.md) and one figure (comparison.png)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.studies.compare.calibrate import TRUTHS

if TYPE_CHECKING:
    from harness.studies.compare.experiment import Comparison
    from harness.studies.compare.paired import Estimate


def _d(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:+.3f}"


def _est(e: Estimate, level: float) -> str:
    lo, hi = e.interval(level)
    return f"{_d(e.value)} [{_d(lo)}, {_d(hi)}]"


def _g(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def markdown(c: Comparison) -> str:
    """Rules, verdicts with offset, slope and top gap, the per-budget differences, the repetition fit,
    each variant's own frontier, and what could not be compared."""
    r, ci = c.rules, c.rules.ci
    lines = [
        f"# Experiment {c.experiment}: {c.verdict}",
        "",
        f"Reference: {c.reference}. Each variant is paired with the reference at every shared compute "
        "budget and seed; d = ln(L_variant / L_reference) (+0.010 is about 1% higher loss). Offset: mean d "
        "(at the budgets' geometric mean compute); slope: d ln(L ratio) / d ln C (+: the variant's loss "
        "falls more slowly); top: mean d at the largest shared budget. Noise from the replicate seeds "
        f"(a seed's effect shared by its budgets and each run's own), {ci:.0%} intervals.",
        "",
        f"Rules, fixed before the runs: the smallest effects worth reporting are {r.min_offset} (offset), "
        f"{r.min_slope} (slope) and {r.min_top} (top); an effect is significant at {r.level}/3 and at "
        f"least that size; 'no effect' needs all three shown smaller by two one-sided tests at {r.level}; "
        f"'changes at the top' needs the top gap to be an effect where the line does not fit (lack of fit "
        f"p < {r.lof_level}) or to be the only effect; the rest is 'inconclusive'. Right verdicts: the "
        "share the rule gets right on simulated experiments at that variant's budgets, seeds and noise "
        f"(truths: {', '.join(TRUTHS)}; harness/studies/compare/calibrate.py).",
        "",
        "| variant | verdict | seeds | offset | slope | top | lack of fit p | noise run, seed "
        "| right verdicts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in c.results:
        t = v.test
        cal = " / ".join(f"{v.calibration[k]:.0%}" for k in TRUTHS) if v.calibration else "n/a"
        lines.append(
            f"| {v.name} | {v.judgement.sentence} | {t.seeds.size} | {_est(t.offset, ci)} "
            f"| {_est(t.slope, ci)} | {_est(t.top, ci)} | {_g(t.lack_of_fit_p, 2)} "
            f"| {_g(t.sigma_run, 2)}, {_g(t.sigma_seed, 2)} | {cal} |"
        )
    lines += [f"| {name} | not compared: {why} | | | | | | | |" for name, why in c.failed.items()]
    lines += tuning_section(c)
    for v in c.results:
        t = v.test
        lo, hi = t.budget_interval(ci)
        lines += [
            "",
            f"## {v.name}: d at each shared budget",
            "",
            f"Offset at C = {t.C_mid:.3g} FLOPs; {t.dropped} budget(s) left out (a seed lacks them).",
            "",
            "| C (FLOPs) | epochs | d per seed | mean d [CI] |",
            "| --- | --- | --- | --- |",
        ]
        for b in range(t.C.size):
            seeds = ", ".join(_d(x) for x in t.d[b])
            lines.append(
                f"| {t.C[b]:.3g} | {_g(t.epochs[b])} | {seeds} | {_d(t.mean[b])} [{_d(lo[b])}, {_d(hi[b])}] |"
            )
        if v.repetition is not None:
            f = v.repetition
            onset = (
                f"{f.onset:.3g} epochs on"
                if math.isfinite(f.onset)
                else "no budget on (none costs that much)"
            )
            form = (
                "R* sits at the grid's edge: the form, which can only plateau, does not describe these data"
                if f.at_bound
                else "a token repeated R times keeps exp(-R/R*) of its value"
            )
            lines += [
                "",
                f"Repeated data: every budget costs at least {r.min_offset} (its interval above 0) from "
                f"{onset}. Muennighoff et al.'s effective data (studies/compare/repetition.py), d = c "
                f"ln(D/D'), fits c = {f.c:.3g}, R* = {f.r_star:.3g} repetitions [{f.r_star_ci[0]:.3g}, "
                f"{f.r_star_ci[1]:.3g}], largest residual {f.max_residual:.3f}: {form}.",
            ]
    lines += [
        "",
        "## Each variant's own frontier (descriptive, as in its fit.json)",
        "",
        "| variant | alpha [CI] | E [CI] | R^2 | frontier points |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in c.frontiers:
        (alo, ahi), (elo, ehi) = f.interval(2), f.interval(0)
        lines.append(
            f"| {f.name} | {f.alpha:.3g} [{_g(alo)}, {_g(ahi)}] | {f.E:.3g} [{_g(elo)}, {_g(ehi)}] "
            f"| {f.r2:.4f} | {f.C.size} |"
        )
    lines += [f"| {name} | not fitted: {why} | | | |" for name, why in c.unfitted.items()]
    return "\n".join([*lines, "", "![comparison](comparison.png)", ""])


def summary(c: Comparison, exp_dir: Path) -> str:
    """The terminal summary: each variant's verdict with offset, slope and top gap (d = ln of the loss
    ratio against the reference, with intervals), what was not compared, and where the full report is."""
    ci = c.rules.ci
    head = f"comparison {c.experiment}: {c.verdict} (reference {c.reference}"
    lines = [f"{head}; d = ln(L_variant / L_reference), {ci:.0%} intervals)"]
    width = max([len(v.name) for v in c.results] + [len(n) for n in c.failed] + [7])
    for v in c.results:
        t = v.test
        lines.append(
            f"  {v.name:<{width}}  {v.judgement.sentence}\n  {'':<{width}}  offset {_est(t.offset, ci)}  "
            f"slope {_est(t.slope, ci)}  top {_est(t.top, ci)} at {t.C[-1]:.3g} FLOPs"
        )
    lines += [f"  {name:<{width}}  not compared: {why}" for name, why in c.failed.items()]
    procedure = c.tuning_procedure
    tuning = f"every arm: {procedure}" if procedure else "not one procedure for every arm (comparison.md)"
    lines.append(f"  tuning     {tuning}")
    lines.append(f"  report     {exp_dir / 'comparison.md'}, {exp_dir / 'comparison.png'}")
    return "\n".join(lines)


def rule_text(rule: dict) -> str:
    """A peak-LR rule (train.lr, lr_rule, lr_ref_width, lr_exponent) in words."""
    if rule.get("lr_rule") in ("inverse_width", "power"):
        exponent = rule.get("lr_exponent", 1.0) if rule["lr_rule"] == "power" else 1.0
        ref = rule["lr_ref_width"]
        return f"peak LR {rule['lr']:g} x min(1, {ref} / width)^{exponent:g}"
    return ", ".join(f"{k} {v}" for k, v in rule.items())


def tuning_section(c: Comparison) -> list[str]:
    """How each arm was tuned (experiment.json's records) and whether every arm got the same procedure."""
    procedure = c.tuning_procedure
    head = (
        f"Every arm was tuned by the same procedure: {procedure}."
        if procedure
        else "**The arms were not tuned by the same procedure** (or a record is missing)."
    )
    lines = [
        "", "## Tuning (recorded before the runs: configs/experiment/tuning/)", "", head, "",
        "| variant | procedure | scanned arm | optimum (peak LR per scanned width) | rule |",
        "| --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for name in c.curves:
        t = c.tuning.get(name) or {}
        widths = t.get("grid", {}).get("widths", [])
        optimum = ", ".join(f"{w}: {o:.2g}" for w, o in zip(widths, t.get("optimum", []), strict=True))
        lines.append(
            f"| {name} | {t.get('procedure', 'not recorded')} | {t.get('scanned', '')} | {optimum} "
            f"| {rule_text(t.get('rule', {}))} |"
        )
    return lines


def plot(c: Comparison, path: Path) -> None:
    """Left: every run's loss against compute, by variant (line: mean over seeds). Right: each variant's
    d per budget with its interval, the fitted line, and the smallest offset worth reporting."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    fig = Figure(figsize=(12, 5))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.11, top=0.9, wspace=0.25)
    ax, ax_d = fig.subplots(1, 2)
    names = [c.reference, *(n for n in c.curves if n != c.reference)]
    for i, name in enumerate(names):
        for s, (C, L, _) in c.curves[name].seeds.items():
            ax.plot(C, L, "o-" if s == min(c.curves[name].seeds) else "o:", color=f"C{i}", ms=3, lw=1,
                    label=name if s == min(c.curves[name].seeds) else None)  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="validation loss (nats/token)",
           title="every run (one line per seed)")  # fmt: skip
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.legend(fontsize=8)
    for i, v in enumerate(c.results, 1):
        t = v.test
        lo, hi = t.budget_interval(c.rules.ci)
        ax_d.errorbar(t.C, t.mean, yerr=[t.mean - lo, hi - t.mean], fmt="o", color=f"C{i}", capsize=3,
                      label=f"{v.name}: {v.judgement.verdict}")  # fmt: skip
        x = np.log(t.C / t.C_mid)
        ax_d.plot(t.C, t.offset.value + t.slope.value * (x - x.mean()), color=f"C{i}", lw=1)
    ax_d.axhline(0, color="black", lw=0.8)
    for sgn in (-1, 1):
        ax_d.axhline(sgn * c.rules.min_offset, color="0.5", ls=":", lw=0.8)
    ax_d.set(xscale="log", xlabel="compute C (FLOPs)", ylabel=f"d = ln(L / L_{c.reference})",
             title=f"paired differences, {c.rules.ci:.0%} intervals; dotted: smallest offset")  # fmt: skip
    if c.results:
        ax_d.legend(fontsize=8)
    fig.suptitle(f"{c.experiment}: {c.verdict}")
    fig.savefig(path, dpi=110)
