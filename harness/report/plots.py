"""The fit's plots: loss vs compute with the frontier and its band, IsoFLOP parabolas, optimal
allocation, residuals. matplotlib's object API only (no pyplot: no global state, no GUI backend)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from harness.fit import FitReport, PowerLaw, power_law_band

PLOTS = ("loss_vs_compute", "isoflop", "optimal_allocation", "residuals")


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
        held = np.isin(obs.run_id, h.held_runs)
        ax.scatter(
            obs.C[held],
            obs.L[held],
            facecolors="none",
            edgecolors="red",
            s=60,
            zorder=3,
            label=f"held out ({int(held.sum())} runs)",
        )
        lp = h.decision
        if lp is not None:
            ax.plot(
                x,
                PowerLaw(lp.E, lp.C0, lp.alpha)(x),
                color="red",
                ls=":",
                lw=1.2,
                label=f"{lp.law} law without held-out runs (error {lp.max_rel_error:.1%})",
            )
    f = r.frontier
    if f is not None:
        ax.scatter(f.x, f.L, facecolors="none", edgecolors="black", s=90, zorder=4, label="frontier points")
        band = power_law_band(r.samples.get("frontier"), x, r.bootstrap.ci)
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
            Nb, Lb = r.points.N[b.index], r.points.L[b.index]
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
    tol = 2 * r.noise.level  # two noise standard deviations of one run
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
