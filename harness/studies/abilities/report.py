"""The abilities study's outputs: its Markdown section and its figure (abilities_tasks.png)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.studies.abilities.widths import M_VALUES, METRICS, AbilityReport, Width


def _w(w: Width, x: np.ndarray) -> str:
    """A width with its interval, or where its rise lies when that is outside the frontier's range."""
    if not x.min() <= w.mid <= x.max():
        return f"no rise in range (mid {10**w.mid:.2g})"
    return f"{w.width:.2f} [{w.width_ci[0]:.2f}, {w.width_ci[1]:.2f}]"


def markdown(rep: AbilityReport, plots: list[str]) -> str:
    """The report.md section: what is measured, the rules, every width, and which abilities are abrupt."""
    r, x = rep.rules, np.log10(rep.C)
    abrupt = rep.abrupt
    lines = [
        "## Abilities: smooth loss, abrupt skills?",
        "",
        f"Tasks: {rep.description}. Along the compute frontier ({rep.runs} runs: each budget's and seed's "
        f"lowest-loss run, {rep.seeds} seed(s), {rep.C.min():.3g} to {rep.C.max():.3g} FLOPs), for answers "
        f"of m tokens: exact match (the first m answer tokens are all top-1), log-prob u (mean per-token "
        "log-prob, 0 at a uniform guess, 1 at the Bayes-optimal predictor) and the exact match the "
        "log-probs predict (product over the m tokens of P(top-1 | log p), fitted to every answer token: "
        "the sharpness the metric makes). Width: 10-90% rise of a logistic in log10 C, decades, "
        f"{r.ci:.0%} bootstrap interval over prompts and seeds ({r.bootstrap} resamples).",
        "",
        f"Rules fixed before the runs: abrupt when the exact match's width is below {r.max_width} decades "
        "(upper end), its midpoint inside the compute range, and it is narrower than predicted in at least "
        f"1 - {r.level}/{rep.tests} of the paired resamples (Bonferroni over {rep.tests} tests). The "
        "log-prob snaps when its own width passes the first two rules.",
        "",
        f"**{len({a.name for a in abrupt})} abrupt abilities ({len(abrupt)} of {len(rep.rows)} ability x m)"
        + (": " + ", ".join(f"{a.name} (m={a.m})" for a in abrupt) if abrupt else "")
        + f"; the log-prob snaps in {sum(a.snaps for a in rep.rows)}.**",
        "",
        sharpening(rep),
        "",
        "| ability | frequency | m | exact-match width | log-prob width | predicted width | exact match "
        "midpoint C | narrower than predicted | exact / u at the top | abrupt | log-prob snaps |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in rep.rows:
        w = a.widths
        freq = "n/a" if a.frequency is None else f"{a.frequency:.3g}"
        lines.append(
            f"| {a.name} | {freq} | {a.m} | {_w(w['exact'], x)} | {_w(w['logp'], x)} "
            f"| {_w(w['predicted'], x)} "
            f"| {10 ** w['exact'].mid:.3g} | {a.sharper_share:.0%} | {a.final['exact']:.2f} / "
            f"{a.final['logp']:.2f} | {'yes' if a.abrupt else 'no'} | {'yes' if a.snaps else 'no'} |"
        )
    lines += [""] + [f"![{p}](plots/{p}.png)" for p in plots] + [""]
    return "\n".join(lines)


def sharpening(rep: AbilityReport) -> str:
    """One line: the median width of each metric at each m, over the abilities whose exact match rises
    inside the compute range: how the metric sharpens with m while the log-prob does not."""
    x = np.log10(rep.C)
    risen = {a.name for a in rep.rows if a.m == 1 and x.min() <= a.widths["exact"].mid <= x.max()}
    parts = []
    for m in sorted({a.m for a in rep.rows}):
        rows = [a for a in rep.rows if a.m == m and a.name in risen]
        if rows:
            med = {k: np.median([a.widths[k].width for a in rows]) for k in METRICS}
            parts.append(f"m={m}: {med['exact']:.2f} / {med['logp']:.2f} / {med['predicted']:.2f}")
    return (
        f"Median widths (decades; exact match / log-prob / predicted) over the {len(risen)} abilities whose "
        f"exact match rises inside the range at m = 1: {'; '.join(parts) or 'none'}. The predicted curve "
        "narrows with m by construction (a product of m factors): that much sharpness the metric makes."
    )


def panel_titles(rep: AbilityReport) -> dict[str, str]:
    """Each ability's panel title: its name and, where the source gives one, its frequency and rank
    among the abilities (1: the most frequent)."""
    freq = {a.name: a.frequency for a in rep.rows if a.frequency is not None}
    ranked = sorted(freq, key=lambda n: -freq[n])
    return {
        a.name: f"{a.name}: frequency {freq[a.name]:.2g}, rank {ranked.index(a.name) + 1} of {len(ranked)}"
        if a.name in freq
        else a.name
        for a in rep.rows
    }


def write_plots(rep: AbilityReport, plot_dir: Path, *, c_label: str) -> list[str]:
    """abilities_tasks.png: per ability, exact match (solid; dots: each seed's run) and log-prob u
    (dashed) against compute along the frontier, one colour per answer length m; one legend for all."""
    from matplotlib.figure import Figure

    plot_dir.mkdir(parents=True, exist_ok=True)
    titles = panel_titles(rep)
    names = list(titles)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    height = 3.4 * rows + 1.3  # inches: the panels, and above them the title and the legend
    fig = Figure(figsize=(4.6 * cols, height))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.1, top=1 - 1.3 / height, hspace=0.5, wspace=0.25)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    order = np.argsort(rep.C)
    # one line through each budget's mean over its seeds (runs within 10% of compute), seeds as dots
    group = np.cumsum(np.r_[True, np.diff(np.log(rep.C[order])) > np.log(1.1)]) - 1
    C_mean = np.exp(np.bincount(group, np.log(rep.C[order])) / np.bincount(group))
    handles = {}
    for ax, name in zip(axes, names, strict=False):
        for j, m in enumerate(M_VALUES):
            if (name, m) not in rep.curves:
                continue
            y = rep.curves[name, m][:, order]
            for k, style, label in ((0, "-", "exact match"), (1, "--", "log-prob u")):
                mean = np.bincount(group, y[k]) / np.bincount(group)
                (handles[f"{label}, answer length m={m}"],) = ax.plot(
                    C_mean, mean, style, color=f"C{j}", lw=1.4 if k == 0 else 1.1
                )
            ax.scatter(rep.C[order], y[0], color=f"C{j}", s=8)
        ax.set(xscale="log", ylim=(-0.03, 1.03), xlabel=c_label, ylabel="score (0 to 1)")
        ax.set_title(titles[name], fontsize=10)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=min(4, len(handles)), fontsize=9,
               bbox_to_anchor=(0.5, 1 - 0.3 / height), frameon=False)  # fmt: skip
    fig.suptitle(
        "Exact match (solid; dots: each seed's run) and log-prob u (dashed; 0: uniform guess, 1: Bayes) "
        "along the compute frontier",
        fontsize=11,
        y=1 - 0.05 / height,
    )
    fig.savefig(plot_dir / "abilities_tasks.png", dpi=110)
    return ["abilities_tasks"]
