"""The fit's plots: loss vs compute with the frontier and its band, IsoFLOP parabolas, optimal
allocation, residuals. matplotlib's object API only (no pyplot: no global state, no GUI backend).

Plots a researcher keeps: every axis and legend entry has its unit, legends sit outside the data,
the axes fit the data (a loss floor far below it is marked at the edge, not drawn by squashing the
data into a strip), held-out runs stand out, and the optimal allocation shows its data points and
intervals."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from harness.fit import FitReport, PowerLaw, power_law_band

PLOTS = ("loss_vs_compute", "isoflop", "optimal_allocation", "residuals")
DPI = 120


def flops_label(c: float) -> str:
    """A compute budget with its unit: 3e+10 -> '3e10 FLOPs'."""
    mantissa, _, exp = f"{c:.2g}".partition("e")
    return f"{mantissa}e{int(exp)} FLOPs" if exp else f"{mantissa} FLOPs"


def _figure(width: float, height: float, cols: int = 1):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, cols)


def _log_loss_axis(ax, lo: float, hi: float) -> None:
    """A log loss axis over [lo, hi] with evenly spaced, uniformly formatted ticks (log decades are
    too coarse for a loss that spans a factor of 2)."""
    from matplotlib.ticker import MaxNLocator, NullFormatter

    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    ticks = [t for t in MaxNLocator(nbins=8).tick_values(lo, hi) if lo <= t <= hi]
    ax.set_yticks(ticks, [f"{t:.3g}" for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())


def _mark_floors(ax, floors: list[tuple[float, str, str, str]], lo: float) -> None:
    """Each (value, label, color, linestyle) as a line if it lies inside the y-range (from lo up),
    else as a note stacked at the bottom edge: a floor far below the data does not squash it."""
    below = 0
    for value, label, color, ls in floors:
        if value >= lo:
            ax.axhline(value, color=color, ls=ls, lw=0.9, label=f"{label} = {value:.3g} nats/token")
            continue
        ax.annotate(
            f"{label} = {value:.3g} nats/token, below this axis",
            xy=(0.01, 0.012 + 0.04 * below),
            xycoords="axes fraction",
            fontsize=7,
            color=color,
            ha="left",
            va="bottom",
        )
        below += 1


def _loss_vs_compute(r: FitReport, x: np.ndarray, c_label: str, l_label: str):
    obs = r.obs
    fig, ax = _figure(9.0, 6.6)
    if obs.has_curves:
        for j in np.unique(obs.curve_run):
            m = obs.curve_run == j
            ax.plot(obs.curve_C[m], obs.curve_L[m], color="0.85", lw=0.6, zorder=0)
    sc = ax.scatter(
        obs.C, obs.L, c=np.log10(obs.N), cmap="viridis", s=18, zorder=2, label="runs (final loss)"
    )
    fig.colorbar(sc, ax=ax, label=f"model size: log10 N ({obs.params} params)", pad=0.01)
    h, f = r.holdout, r.frontier
    if h is not None:
        held = np.isin(obs.run_id, h.held_runs)
        held_C = obs.C[held]
        ax.axvspan(held_C.min() / 1.15, held_C.max() * 1.15, color="red", alpha=0.06, lw=0)
        ax.scatter(
            held_C, obs.L[held], marker="D", facecolors="none", edgecolors="red", s=70, lw=1.4, zorder=4,
            label=f"held out: {int(held.sum())} runs not fitted (shaded)",
        )  # fmt: skip
        lp = h.decision
        if lp is not None:
            ax.plot(
                x, PowerLaw(lp.E, lp.C0, lp.alpha)(x), color="red", ls=":", lw=1.3,
                label=f"{lp.law} law fitted without them: off by {lp.max_rel_error:.1%} at most",
            )  # fmt: skip
    if f is not None:
        ax.scatter(f.x, f.L, facecolors="none", edgecolors="black", s=95, zorder=3, label="frontier points")
        band = power_law_band(r.samples.get("frontier"), x, r.bootstrap.ci)
        if band is not None:
            ax.fill_between(
                x, *band, color="C1", alpha=0.22, lw=0, label=f"{r.bootstrap.ci:.0%} bootstrap band"
            )
        law = f.law
        floor = f"{law.E:.3g} + " if law.E > 0 else ""
        ax.plot(
            x, f.predict(x), color="C1", lw=2,
            label=f"frontier law L = {floor}({law.x0:.2g} FLOPs / C)^{law.alpha:.3g}",
        )  # fmt: skip
    if r.frontier_curves is not None:
        fc = r.frontier_curves
        ax.plot(
            x, fc.predict(x), color="0.45", ls="-.", lw=1,
            label=f"envelope of training curves, alpha = {fc.law.alpha:.3g}",
        )  # fmt: skip
    if r.power_law is not None and f is not None and f.law.E > 0:
        ax.plot(
            x, r.power_law.predict(x), color="C2", ls="--", lw=1,
            label=f"pure power law (E = 0), alpha = {r.power_law.law.alpha:.3g}",
        )  # fmt: skip
    lo, hi = float(obs.L.min()) / 1.06, float(obs.L.max()) * 1.06
    _log_loss_axis(ax, lo, hi)
    ax.set(xscale="log", xlabel=c_label, ylabel=l_label, xlim=(x[0], x[-1]))
    ax.set_title(r.verdict.sentence.split(",")[0])
    floors = [(f.law.E, "fitted E", "C1", "--")] if f is not None and f.law.E > 0 else []
    if r.ground_truth is not None:
        floors.append((r.ground_truth.bayes_loss, "Bayes loss (known)", "black", "-."))
    _mark_floors(ax, floors, lo)
    fig.legend(loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    return fig


def _isoflop(r: FitReport, l_label: str):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm

    obs, p, iso = r.obs, r.points, r.isoflop
    fig, ax = _figure(9.0, 5.5)
    # a colour scale, not a legend entry per budget: published sets have dozens of budgets
    shade = ScalarMappable(LogNorm(min(b.C for b in iso.budgets), max(b.C for b in iso.budgets)), "plasma_r")
    for b in iso.budgets:
        color = shade.to_rgba(b.C)
        Nb, Lb = p.N[b.index], p.L[b.index]
        ax.scatter(Nb, Lb, color=color, s=18)
        u = np.linspace(np.log(Nb.min()) - 0.1, np.log(Nb.max()) + 0.1, 100) - b.center
        ax.plot(np.exp(u + b.center), np.polyval(b.coeffs, u), color=color, lw=1)
        if math.isfinite(b.N_opt):
            ax.scatter(
                [b.N_opt], [b.L_opt], marker="*", s=150, zorder=4, edgecolors=color,
                color=color if b.used else "white",
            )  # fmt: skip
    fig.colorbar(shade, ax=ax, label=f"compute budget C (FLOPs, {obs.flops} count)", pad=0.01)
    lo, hi = float(p.L[np.concatenate([b.index for b in iso.budgets])].min()), float(p.L.max())
    _log_loss_axis(ax, lo / 1.04, hi * 1.04)
    ax.set(
        xscale="log",
        xlabel=f"model size N ({obs.params} params)",
        ylabel=l_label,
        title=f"IsoFLOP profiles: N_opt ~ C^{iso.a:.3f} (star: each budget's optimum; hollow: not used)",
    )
    return fig


def _best_of_each_budget(r: FitReport) -> np.ndarray:
    """Indices of the runs with the lowest loss at each budget: the allocation the data chose there."""
    obs = r.obs
    if obs.budget is None:
        return np.arange(0)
    return np.array(
        [np.flatnonzero(obs.budget == b)[np.argmin(obs.L[obs.budget == b])] for b in np.unique(obs.budget)]
    )


def _approaches(r: FitReport) -> str:
    """Which allocation approaches the figure shows, and why any other is missing: its reason's first
    clause (the whole reason, which may list every budget, is in report.md)."""

    def why(section: str) -> str:
        return textwrap.shorten(r.skipped.get(section, "").split(" (")[0], 120, placeholder=" ...")

    fitted, missing = [], []
    if r.isoflop is not None:
        fitted.append("approach 2 (IsoFLOP)")
    else:
        missing.append(f"approach 2 (IsoFLOP): {why('isoflop')}")
    if r.parametric is not None and r.parametric.allocates:
        fitted.append("approach 3 (parametric L(N, D))")
    elif r.parametric is not None:
        missing.append("approach 3 (parametric L(N, D)): its fit degenerated (A or B at 0), so no optimum")
    else:
        missing.append(f"approach 3 (parametric L(N, D)): {why('parametric')}")
    lines = [f"fitted: {', '.join(fitted)}"] if fitted else []
    return "\n".join([*lines, *(f"not fitted: {m}" for m in missing)])


def _optimal_allocation(r: FitReport, x: np.ndarray, c_label: str):
    obs, iso, par = r.obs, r.isoflop, r.parametric
    fig, axes = _figure(11.0, 5.2, cols=2)
    best = _best_of_each_budget(r)
    # a grid's budgets are token budgets: their best run is the largest model there, not a compute optimum
    best_label = "best run of each " + (
        "compute budget" if r.budgets.isoflop else "token budget (not a compute optimum)"
    )
    for ax, what in zip(axes, ("N", "D"), strict=True):
        unit = f"N_opt ({obs.params} params)" if what == "N" else "D_opt (tokens)"
        if best.size:
            vals = obs.N[best] if what == "N" else obs.D[best]
            ax.scatter(obs.C[best], vals, marker="o", facecolors="none", edgecolors="black", s=40,
                       label=best_label)  # fmt: skip
        if iso is not None:
            used = [b for b in iso.budgets if b.used]
            vals = [b.N_opt if what == "N" else b.D_opt for b in used]
            ax.scatter(
                [b.C for b in used], vals, color="C0", s=45, zorder=3, label="IsoFLOP optima (approach 2)"
            )
            exp, key = (iso.a, "a") if what == "N" else (iso.b, "b")
            bounds = iso.ci.get(key)
            interval = f" [{bounds[0]:.2f}, {bounds[1]:.2f}]" if bounds is not None else ""
            line = iso.N_opt(x) if what == "N" else iso.D_opt(x)
            ax.plot(x, line, color="C0", label=f"approach 2: ~ C^{exp:.3f}{interval}")
        if par is not None and par.allocates:
            s, k = par.surface, par.k
            line, exp = (s.N_opt(x, k), s.a) if what == "N" else (s.D_opt(x, k), s.b)
            ax.plot(x, line, color="C3", ls="--", label=f"approach 3 (parametric): ~ C^{exp:.3f}")
            top, bounds = float(r.points.C.max()), par.ci.get(f"{what}_opt")
            ci_share = f"{r.bootstrap.ci:.0%}"
            if bounds is not None and all(math.isfinite(v) and v > 0 for v in bounds):
                at = float(s.N_opt(top, k) if what == "N" else s.D_opt(top, k))
                ax.errorbar(
                    [top], [at], yerr=[[max(at - bounds[0], 0)], [max(bounds[1] - at, 0)]], color="C3",
                    capsize=4, fmt="s", ms=4, label=f"approach 3 at the top compute, {ci_share} interval",
                )  # fmt: skip
        ax.set(xscale="log", yscale="log", xlabel=c_label, ylabel=unit, xlim=(x[0], x[-1]))
        ax.set_title(f"compute-optimal {'model size' if what == 'N' else 'training tokens'}", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.suptitle(f"Optimal allocation of compute between model size and data\n{_approaches(r)}", fontsize=9)
    return fig


def _residuals(r: FitReport, c_label: str):
    from matplotlib.ticker import PercentFormatter

    obs, f = r.obs, r.frontier
    fig, axes = _figure(11.0, 5.2, cols=2)
    tol = 2 * r.noise.level  # two noise standard deviations of one run
    if f is not None:
        axes[0].scatter(f.x, f.L / f.predict(f.x) - 1, color="C1", label="frontier point")
    axes[0].set_title("frontier law: residuals of its points", fontsize=10)
    if r.parametric is not None:
        res = obs.L / r.parametric.surface.loss(obs.N, obs.D) - 1
        sc = axes[1].scatter(
            obs.C, res, c=np.log10(obs.N), cmap="viridis", s=16, label="run (colour: its size)"
        )
        fig.colorbar(sc, ax=axes[1], label=f"log10 N ({obs.params} params)")
    axes[1].set_title("parametric L(N, D): residuals of every run", fontsize=10)
    for ax in axes:
        ax.set(xscale="log", xlabel=c_label, ylabel="relative residual L / L_fit - 1")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.axhline(0, color="black", lw=0.6, label="the fitted law (no residual)")
        ax.axhline(tol, color="red", ls=":", lw=0.8, label=f"±2 noise sd of one run (±{tol:.1%})")
        ax.axhline(-tol, color="red", ls=":", lw=0.8)
    entries = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    fig.legend(
        entries.values(), entries.keys(), loc="outside lower center", ncol=4, fontsize=7, frameon=False
    )
    return fig


def write_plots(report: FitReport, plot_dir: Path) -> list[str]:
    """Draw the plots that the report's sections allow; return their names (file stems)."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    r, obs = report, report.obs
    c_label = f"training compute C (FLOPs, {obs.flops} count)"
    l_label = "validation loss L (nats/token)"
    x = np.geomspace(obs.C.min() / 1.5, obs.C.max() * 1.5, 200)
    figures = {"loss_vs_compute": _loss_vs_compute(r, x, c_label, l_label)}
    if r.isoflop is not None:
        figures["isoflop"] = _isoflop(r, l_label)
    if r.isoflop is not None or r.parametric is not None:
        figures["optimal_allocation"] = _optimal_allocation(r, x, c_label)
    figures["residuals"] = _residuals(r, c_label)
    for name, fig in figures.items():
        fig.savefig(plot_dir / f"{name}.png", dpi=DPI)
    return list(figures)
