"""The claims report's outputs, one renderer each: report.md, blob.json, plots/claims.png, the terminal
summary. Every number comes from a `Claim` (harness.studies.blob.claims)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from harness import store
from harness.studies.blob.claims import NO, UNSTABLE, YES, Claim

BLOB_JSON, REPORT_MD, CLAIMS_PNG = "blob.json", "report.md", "claims.png"
AGREES = {YES: "yes", NO: "**no**", UNSTABLE: "unstable"}


def _estimate(value: float | None, interval: tuple[float, float] | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g}" + ("" if interval is None else f" [{interval[0]:.3g}, {interval[1]:.3g}]")


def _number(c: Claim) -> str:
    return f"{c.number} {_estimate(c.value, c.interval)}" if c.value is not None else "n/a"


def markdown(claims: list[Claim], header: dict) -> str:
    """report.md: the table of claims, then what disagrees with a claim, plainly."""
    lines = [
        "# The big blob: every seed claim at this scale",
        "",
        f"Commit {header['commit']}, {header['date']}; realizations: {', '.join(header['realizations'])}. "
        "Rules fixed before the runs: docs/blob.md. A claim whose two realizations disagree is unstable.",
        "",
        "| claim | test | verdict | second realization | number [95%] | error rate | agrees with the claim? "
        "| evidence |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in claims:
        lines.append(
            f"| {c.key} {c.claim} | {c.test} | {c.verdict} | {c.second or 'n/a'}: "
            f"{_estimate(c.second_value, c.second_interval)} | {_number(c)} "
            f"| {c.error_rate or 'n/a'} | {AGREES.get(c.agrees, c.agrees)} | {c.evidence} |"
        )
    against = [c for c in claims if c.agrees == NO]
    lines += ["", "## Where the harness disagrees at this scale", ""]
    lines += [f"- {c.key} {c.claim}: {c.test}; {_number(c)}." for c in against] or ["- nowhere."]
    lines += ["", "![claims](plots/claims.png)", ""]
    return "\n".join(lines)


def summary(claims: list[Claim]) -> str:
    """The terminal summary: one line per claim."""
    width = max(len(c.key) for c in claims)
    lines = ["claims (docs/blob.md; agrees: does the harness support the claim at this scale?)"]
    for c in claims:
        lines.append(f"  {c.key:<{width}}  {c.verdict:<12} agrees {c.agrees:<12} {_number(c):<40} {c.claim}")
    counts = {v: sum(c.agrees == v for c in claims) for v in (YES, NO, UNSTABLE)}
    lines.append(f"  {counts[YES]} agree, {counts[NO]} disagree, {counts[UNSTABLE]} unstable, "
                 f"{len(claims) - sum(counts.values())} untested or inconclusive")  # fmt: skip
    return "\n".join(lines)


def wandb_summary(claims: list[Claim]) -> dict[str, str | float | None]:
    """The report run's W&B summary: each claim's verdict, agreement and number (`claims/<key>/...`)."""
    out: dict[str, str | float | None] = {}
    for c in claims:
        key = f"claims/{c.key}"
        out |= {f"{key}/verdict": c.verdict, f"{key}/agrees": c.agrees, f"{key}/value": c.value}
    for v in (YES, NO, UNSTABLE):
        out[f"claims/n_agrees_{v}"] = sum(c.agrees == v for c in claims)
    return out


def plot(claims: list[Claim], path: Path) -> None:
    """claims.png: one panel per claim with a number: its estimate and 95% interval on each realization,
    coloured by the (combined) verdict."""
    from matplotlib.figure import Figure

    shown = [c for c in claims if c.value is not None and math.isfinite(c.value)]
    cols = 4
    rows = max(1, -(-len(shown) // cols))
    fig = Figure(figsize=(3.6 * cols, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colour = {YES: "tab:green", NO: "tab:red", UNSTABLE: "tab:orange"}
    for ax, c in zip(axes, shown, strict=False):
        for x, value, interval in ((1, c.value, c.interval), (2, c.second_value, c.second_interval)):
            if value is None:
                continue
            lo, hi = interval or (value, value)
            ax.errorbar([x], [value], yerr=[[value - lo], [hi - value]], fmt="o", capsize=4,
                        color=colour.get(c.verdict, "tab:gray"))  # fmt: skip
        ax.axhline(0.5 if c.key.startswith("3/") else 0.0, color="k", lw=0.6, ls=":")
        ax.set(xlim=(0.5, 2.5), xticks=[1, 2], xticklabels=["1st", "2nd"], title=f"{c.key}: {c.verdict}",
               ylabel=c.number[:28])  # fmt: skip
        ax.title.set_fontsize(9)
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    fig.suptitle("each claim's number and 95% interval (green: agrees, red: disagrees, orange: unstable)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def write(out: Path, claims: list[Claim], header: dict) -> list[Path]:
    """report.md, blob.json and plots/claims.png in `out`; returns the files written."""
    data = {**header, "claims": [asdict(c) for c in claims]}
    store.write_atomic(out / BLOB_JSON, json.dumps(data, indent=2, default=str) + "\n")
    store.write_atomic(out / REPORT_MD, markdown(claims, header))
    plot(claims, out / store.PLOTS / CLAIMS_PNG)
    return [out / BLOB_JSON, out / REPORT_MD, out / store.PLOTS / CLAIMS_PNG]
