"""What a sweep prints: the start screen (plan, paths, W&B, estimated time), the fit summary a person
reads in ten seconds (the law with intervals, per-decade cut, hold-out errors, the verdict with its
reasons as bullets, what was not fitted and why), and where everything was written.

Pure text from plain values: no files, no torch. Fields a newer FitReport may carry (per_decade,
reliability flags on intervals) are read with getattr, so the summary renders either."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from harness.fit import FitReport
from harness.plan import RunSpec, compute_summary
from harness.progress import duration
from harness.report.formatting import ci, ci_pct
from harness.report.formatting import g as _g
from harness.report.formatting import pct as _pct

WIDTH = 110  # wrap long lines here (the repository's line length); labels take the first 13 columns
SECTIONS = {
    "frontier": "frontier L(C)",
    "kaplan_L_N": "Kaplan L(N)",
    "kaplan_L_D": "Kaplan L(D)",
    "isoflop": "IsoFLOP profiles",
    "parametric": "parametric L(N, D)",
    "holdout": "hold-out",
}


def count(x: float) -> str:
    """A count with a metric suffix: 16.4k, 2.3M, 1.1G (below 1000 as is; from 1e15 on as 1e15)."""
    if abs(x) >= 1e15:
        return sci(x)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def sci(x: float) -> str:
    """A FLOP count as 2.3e12 (no '+' or leading zeros in the exponent)."""
    mantissa, _, exp = f"{x:.2g}".partition("e")
    return f"{mantissa}e{int(exp)}" if exp else mantissa


def line(label: str, text: str) -> str:
    """`  label      text`, wrapped under the text; each of text's own lines starts a new line unwrapped
    when it is a path or a command to copy (no spaces to break at, or a leading '$ ')."""
    out = []
    for i, part in enumerate(text.split("\n")):
        head = f"  {label if i == 0 else '':<11}"
        if part.startswith("$ "):
            out.append(head + part[2:])
        else:
            out.append(
                textwrap.fill(
                    part, WIDTH, initial_indent=head, subsequent_indent=" " * 13, break_on_hyphens=False,
                    break_long_words=False,
                )
            )  # fmt: skip
    return "\n".join(out)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def runs_summary(specs: Sequence[RunSpec], design: str) -> str:
    """The start screen's count of runs, a product only where it is one: `20: 5 sizes x 1 grid budget x 4
    seeds` (every size at every budget and seed), else the configurations (a size at a budget) and the
    seed replicates of how many of them:
    `77: 69 configurations (14 sizes, 9 isoflop budgets) + 8 replicates (seeds 1, 2 of 4)`."""
    seeds: dict[tuple, set[int]] = {}
    for s in specs:
        seeds.setdefault((s.shape.width, s.shape.depth, s.tokens, s.budget), set()).add(s.train.seed)
    sizes, budgets = len({s.shape.width for s in specs}), len({s.budget for s in specs})
    size_text, budget_text = _plural(sizes, "size"), _plural(budgets, f"{design} budget")
    if sizes * budgets == len(seeds):
        text = f"{len(specs)}: {size_text} x {budget_text}"
    else:
        text = f"{len(specs)}: {len(seeds)} configurations ({size_text}, {budget_text})"
    if len({frozenset(v) for v in seeds.values()}) == 1:
        k = len(next(iter(seeds.values())))
        return text + (f" x {k} seeds" if k > 1 else "")
    extra = sorted(set.union(*seeds.values()) - set.intersection(*seeds.values()))
    replicated = sum(len(v) > 1 for v in seeds.values())
    return (
        f"{text} + {len(specs) - len(seeds)} replicates (seed{'s' * (len(extra) > 1)} "
        f"{', '.join(map(str, extra))} of {replicated})"
    )


def start_text(
    *,
    title: str,
    design: str,
    specs: Sequence[RunSpec],
    todo: int,
    finished: int,
    eta: tuple[float, str] | None,
    sweep_dir: Path,
    wandb: str,
    shard: tuple[int, int] = (0, 1),
    data: str = "",
) -> str:
    """The start screen: what will be trained, where it goes, how long it should take; `data`: how
    often the runs pass over a finite source (console.passes)."""
    widths = sorted({s.shape.width for s in specs})
    params = sorted({s.params.total for s in specs})
    budgets = sorted({s.budget for s in specs})
    unit = "FLOPs" if design == "isoflop" else "tokens"
    shown = [sci(b) if unit == "FLOPs" else count(b) for b in budgets]
    if len(shown) > 8:
        shown = [*shown[:3], "...", *shown[-3:]]
    compute = compute_summary(specs)
    separate, saved = compute["flops_separate"], compute["saved_frac"]
    saved = f" ({sci(compute['flops_spent'])} trained: branches save {saved:.0%})" if saved > 1e-3 else ""
    k, n = shard
    lines = [
        f"sweep {title}",
        line("runs", runs_summary(specs, design)),
        line("sizes", f"widths {widths[0]}-{widths[-1]}: {count(params[0])}-{count(params[-1])} params"),
        line("budgets", f"{', '.join(shown)} {unit}"),
        line(
            "total",
            f"{count(sum(s.tokens for s in specs))} tokens, {sci(separate)} FLOPs (full count){saved}",
        ),
        *([line("data", data)] if data else []),
        line(
            "to train",
            (f"shard {k + 1} of {n}: " if n > 1 else "")
            + (f"{todo} runs" if todo else "nothing")
            + (f" ({finished} of {len(specs)} finished earlier)" if finished else ""),
        ),
    ]
    if eta is not None and todo:
        lines.append(line("estimate", f"about {duration(eta[0])}, {eta[1]}"))
    lines.append(line("results", f"{sweep_dir}/ (results.csv, fit.json, report.md, plots/)"))
    lines.append(line("W&B", wandb))
    return "\n".join(lines)


def _ci(intervals, key: str, digits: int = 3) -> str:
    """' [lo, hi]' of a fit's interval (marked when unreliable, harness.report.formatting), or ''."""
    return f" {ci(intervals, key, digits)}" if intervals and intervals.get(key) is not None else ""


def _law_lines(r: FitReport) -> list[str]:
    f = r.frontier
    if f is None:
        return []
    law = f.law
    floor = law.E > 0
    formula = (
        f"L(C) = {_g(law.E, 3)} + ({sci(law.x0)} / C)^{_g(law.alpha, 3)}"
        if floor
        else f"L(C) = ({sci(law.x0)} / C)^{_g(law.alpha, 3)} (E at its bound 0: a pure power law)"
    )
    out = [
        line(
            "law",
            f"{formula}\nalpha {_g(law.alpha, 3)}{_ci(f.ci, 'alpha')}, E {_g(law.E, 3)}{_ci(f.ci, 'E')} "
            f"nats/token; fitted to {f.x.size} frontier points",
        )
    ]
    d = r.per_decade
    if d is not None:
        cut = f" {ci_pct(d.ci, 'cut')}" if d.ci.get("cut") is not None else ""
        out.append(
            line(
                "per decade",
                f"10x compute cuts reducible loss by {_pct(d.cut)}{cut}; "
                f"the last 10x bought {_g(d.nats, 3)} nats/token",
            )
        )
    return out


def _other_lines(r: FitReport) -> list[str]:
    out = []
    h = r.holdout
    if h is not None:
        errors = ", ".join(
            f"{name}{' (decides)' * (name == h.decides)} {_pct(law.max_rel_error)}"
            for name, law in h.laws.items()
        )
        text = f"{h.rule}: laws off by at most: {errors}"
        if h.decides not in h.laws:
            text += f"; {h.decides} (decides): no prediction"
        if h.parametric_max_rel_error is not None:
            text += f"; parametric L(N, D) {_pct(h.parametric_max_rel_error)}"
        out.append(line("hold-out", text))
    if r.isoflop is not None:
        i = r.isoflop
        out.append(
            line(
                "optimum",
                f"N_opt ~ C^{_g(i.a, 3)}{_ci(i.ci, 'a')}, D_opt ~ C^{_g(i.b, 3)}{_ci(i.ci, 'b')}, "
                f"{_g(i.tokens_per_param, 3)} tokens/param (IsoFLOP)",
            )
        )
    if r.parametric is not None:
        s, p = r.parametric.surface, r.parametric
        out.append(
            line(
                "parametric",
                f"L(N, D) = {_g(s.E, 3)} + {_g(s.A, 3)}/N^{_g(s.alpha, 3)} + {_g(s.B, 3)}/D^{_g(s.beta, 3)}, "
                f"R^2 {_g(p.r2, 4)}",
            )
        )
    t = r.ground_truth
    if t is not None and t.E is not None:
        where = {True: "inside the frontier E's interval", False: "outside the frontier E's interval"}
        said = where.get(t.contains, "the frontier E has no reliable interval")
        out.append(line("truth", f"Bayes loss {_g(t.bayes_loss, 4)}: {said}"))
    c = r.calibration
    if c is not None:
        out.append(
            line(
                "calibrated",
                f"on this design at {_pct(c.noise)} noise: says no to a smooth law {_pct(c.false_no)} "
                f"of the time, yes to a bent one {_pct(c.false_yes)}",
            )
        )
    if r.skipped:
        why = "\n".join(f"{SECTIONS.get(name, name)}: {why}" for name, why in r.skipped.items())
        out.append(line("not fitted", why))
    return out


def summary_text(report: FitReport, next_step: str = "") -> str:
    """The fit in ten seconds: the law with its intervals, per-decade cut, hold-out errors, the other
    approaches in a line each, what was not fitted and why, then the verdict and its reasons (an
    untested one: why, and `next_step`, what to run for a verdict)."""
    r, obs = report, report.obs
    excluded = f", {len(r.excluded)} excluded" if r.excluded else ""
    head = (
        f"fit: {r.n_runs} runs{excluded}; N = {obs.params} params, C = {obs.flops}-count FLOPs, "
        f"{r.bootstrap.ci:.0%} intervals over {r.bootstrap.resamples} resamples"
    )
    v = r.verdict
    said = {"yes": "yes, loss scales", "no": "no, loss does not scale"}.get(
        v.outcome, f"{v.outcome}: whether loss scales"
    )
    weighed = v.outcome == "untested" and v.checked != "untested"
    verdict = [
        f"VERDICT: {said} smoothly with compute"
        + (f" (the checks say {v.checked})" if weighed else "")
        + (" (a check could not run)" if v.checked == "untested" else "")
    ]
    notes = [("why", v.untested_why)] if weighed else []
    checks = list(v.checks.values()) if len(v.checks) == len(v.reasons) else [None] * len(v.reasons)
    marks = {True: "ok", False: "n/a" if v.checked == "untested" else "FAIL", None: "-"}
    notes += [(marks[ok], reason) for ok, reason in zip(checks, v.reasons, strict=True)]
    if v.outcome == "untested" and next_step:
        notes.append(("next", next_step))
    for mark, text in notes:
        verdict.append(textwrap.fill(text, WIDTH, initial_indent=f"  {mark:<5}", subsequent_indent=" " * 7))
    return "\n".join([head, *_law_lines(r), *_other_lines(r), *verdict])


def outputs_text(*, sweep_dir: Path, written: Sequence[str], wandb: str) -> str:
    """Where the sweep's results went and how to upload W&B's offline runs."""
    lines = [line("wrote", f"{sweep_dir}/: {', '.join(written)}")]
    if wandb:
        lines.append(line("W&B", wandb))
    return "\n".join(lines)
