"""Compare the variants of an ingredient experiment: their compute frontiers side by side, and a verdict.

An experiment directory holds one sweep per variant (`runs/exp-<ingredient>/<variant>/results.csv`,
see configs/experiment/). Each variant's frontier L(C) = E + (C0/C)^alpha is fitted by the sweep's
own fitter (`harness.fit`: same envelope, same bootstrap over runs, same seed and settings as its
fit.json, read from its sweep.json), and its loss is predicted, with a bootstrap interval, at one
common compute inside every variant's range. The verdict compares each variant with the reference:

    'changes the slope'     the alpha intervals are disjoint
    'changes the offset'    the alpha intervals overlap; those of the loss at the common compute do not
    'no measurable effect'  both overlap

and the ingredient's verdict is the strongest of these. Writes <dir>/comparison.md, comparison.json and
frontiers.png; runs after an experiment's multirun (`CompareVariants`, a Hydra callback) or as

    python -m harness.compare runs/exp-architecture [--reference llama]
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from hydra.experimental.callback import Callback

from harness import store
from harness.config import FitConfig
from harness.fit import (
    FitError,
    frontier_bootstrap,
    jsonable,
    percentile_interval,
    power_law_band,
    power_law_values,
)
from harness.report import build_observations

SLOPE, OFFSET, NONE = "changes the slope", "changes the offset", "no measurable effect"
Interval = tuple[float, float]


@dataclass(frozen=True)
class VariantFit:
    """One variant's frontier fit: the law, its points, its bootstrap samples (E, C0, alpha)."""

    name: str
    E: float
    C0: float
    alpha: float
    r2: float
    C: np.ndarray  # frontier points
    L: np.ndarray
    C_range: Interval  # compute of all its fitted runs
    samples: np.ndarray  # (B, 3) kept bootstrap refits
    ci: float

    def loss_at(self, C: float | np.ndarray) -> float | np.ndarray:
        value = power_law_values(np.array([[self.E, self.C0, self.alpha]]), C)[0]
        return float(value[0]) if np.ndim(C) == 0 else value

    def interval(self, column: int) -> Interval:
        return percentile_interval(self.samples[:, column], self.ci)

    def loss_interval(self, C: float) -> Interval:
        band = power_law_band(self.samples, np.array([C]), self.ci)
        return (math.nan, math.nan) if band is None else (float(band[0][0]), float(band[1][0]))


@dataclass(frozen=True)
class Row:
    """One line of the comparison table; intervals are (lo, hi), nan when there were no resamples."""

    variant: str
    alpha: float
    alpha_ci: Interval
    E: float
    E_ci: Interval
    loss: float  # at the common compute
    loss_ci: Interval
    r2: float
    n_points: int
    verdict: str = ""  # against the reference ('' for the reference itself)


@dataclass(frozen=True)
class Comparison:
    """The table, the common compute, the verdict, and the variants that could not be fitted (why)."""

    experiment: str
    reference: str
    ci: float  # level of the intervals
    C_common: float
    rows: tuple[Row, ...]
    verdict: str
    failed: dict[str, str] = field(default_factory=dict)


def fit_variant(name: str, rows: list[dict], cfg: FitConfig, design: str | None = None) -> VariantFit:
    """The frontier fit and bootstrap of `fit_sweep` on a variant's result rows; FitError if impossible.

    `harness.fit.frontier_bootstrap` draws the same rows of losses as fit_sweep, so alpha's and E's
    intervals are the ones in the variant's fit.json.
    """
    obs, _, _ = build_observations(rows, cfg, design=design)
    front, samples = frontier_bootstrap(obs, cfg)
    law = front.law
    return VariantFit(
        name, law.E, law.x0, law.alpha, front.r2, front.x, front.L,
        (float(obs.C.min()), float(obs.C.max())), samples, cfg.ci,
    )  # fmt: skip


def common_compute(ranges: list[Interval]) -> float:
    """The geometric middle of the compute range every variant covers (of all of them if none is shared)."""
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if lo > hi:
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    return math.sqrt(lo * hi)


def disjoint(a: Interval, b: Interval) -> bool:
    """The intervals do not overlap (False when either is unknown, nan)."""
    return a[1] < b[0] or b[1] < a[0]


def pair_verdict(ref: Row, other: Row) -> str:
    """How `other` differs from the reference, read off the intervals (module docstring)."""
    if disjoint(ref.alpha_ci, other.alpha_ci):
        return SLOPE
    if disjoint(ref.loss_ci, other.loss_ci):
        return OFFSET
    return NONE


def ingredient_verdict(verdicts: list[str]) -> str:
    """The strongest effect among the variants' verdicts against the reference."""
    return next((v for v in (SLOPE, OFFSET) if v in verdicts), NONE)


def compare(experiment: str, fits: list[VariantFit], reference: str, failed: dict[str, str]) -> Comparison:
    """The table (reference first) and the verdicts of fitted variants; pure."""
    if reference not in {f.name for f in fits}:
        why = failed.get(reference, "no such variant")
        raise FitError(f"reference variant {reference!r} has no frontier fit ({why})")
    fits = sorted(fits, key=lambda f: (f.name != reference, f.name))
    C = common_compute([f.C_range for f in fits])
    rows = [
        Row(f.name, f.alpha, f.interval(2), f.E, f.interval(0), f.loss_at(C), f.loss_interval(C), f.r2,
            f.C.size)
        for f in fits
    ]  # fmt: skip
    rows = [rows[0], *(replace(r, verdict=pair_verdict(rows[0], r)) for r in rows[1:])]
    verdict = ingredient_verdict([r.verdict for r in rows[1:]]) if len(rows) > 1 else "one variant fitted"
    return Comparison(experiment, reference, fits[0].ci, C, tuple(rows), verdict, dict(failed))


def _ci(x: float, ci: Interval, digits: int = 4) -> str:
    return f"{x:.{digits}g} [{ci[0]:.{digits}g}, {ci[1]:.{digits}g}]"


def markdown(c: Comparison) -> str:
    """The comparison table and verdict as Markdown."""
    lines = [
        f"# Experiment {c.experiment}: {c.verdict}",
        "",
        f"Frontier L(C) = E + (C0/C)^alpha per variant, {c.ci:.0%} bootstrap intervals; loss predicted at "
        f"the common compute C = {c.C_common:.3g} FLOPs. Reference: {c.reference}.",
        "",
        "| variant | alpha [CI] | E [CI] | L(C) [CI] | R^2 | frontier points | vs reference |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in c.rows:
        lines.append(
            f"| {r.variant} | {_ci(r.alpha, r.alpha_ci, 3)} | {_ci(r.E, r.E_ci)} | {_ci(r.loss, r.loss_ci)} "
            f"| {r.r2:.4f} | {r.n_points} | {r.verdict or '(reference)'} |"
        )
    lines += [f"| {name} | fit failed: {why} | | | | | |" for name, why in c.failed.items()]
    return "\n".join(lines) + "\n"


def plot(fits: list[VariantFit], c: Comparison, path: Path) -> None:
    """Overlay of the variants' frontier points, fitted laws and bootstrap bands (log-log)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    fig = Figure(figsize=(7.5, 5.5))
    ax = fig.subplots()
    lo, hi = min(f.C_range[0] for f in fits), max(f.C_range[1] for f in fits)
    x = np.geomspace(lo / 1.3, hi * 1.3, 200)
    for i, f in enumerate(sorted(fits, key=lambda f: f.name != c.reference)):
        color = f"C{i}"
        band = power_law_band(f.samples, x, f.ci)
        if band is not None:
            ax.fill_between(x, *band, color=color, alpha=0.2, lw=0)
        ax.scatter(f.C, f.L, color=color, s=18, zorder=3)
        ax.plot(x, f.loss_at(x), color=color, lw=1.8, label=f"{f.name}: alpha={f.alpha:.3g}, E={f.E:.3g}")
    ax.axvline(c.C_common, color="0.5", ls=":", lw=1, label=f"common compute {c.C_common:.2g}")
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="validation loss (nats/token)",
           title=f"{c.experiment}: {c.verdict}")  # fmt: skip
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)


def variant_dirs(exp_dir: Path) -> list[Path]:
    """The variants of an experiment: its subdirectories holding a results table, by name."""
    return sorted(p.parent for p in exp_dir.glob("*/results.csv"))


def _fit_config(sweep_dir: Path) -> FitConfig:
    meta = store.read_json(sweep_dir / "sweep.json") or {}
    return FitConfig.from_mapping(meta.get("config", {}).get("fit", {}))


def _design(sweep_dir: Path) -> str | None:
    meta = store.read_json(sweep_dir / store.SWEEP_JSON) or {}
    return meta.get("config", {}).get("sweep", {}).get("design")


def compare_dir(exp_dir: Path, reference: str = "") -> Comparison:
    """Fit every variant under exp_dir, compare them, write comparison.md/.json and frontiers.png."""
    dirs = variant_dirs(exp_dir)
    if not dirs:
        raise FitError(f"{exp_dir}: no variant directories with a results.csv")
    fits, failed = [], {}
    for d in dirs:
        try:
            fits.append(fit_variant(d.name, store.read_results_table(d), _fit_config(d), _design(d)))
        except FitError as exc:
            failed[d.name] = str(exc)
    c = compare(exp_dir.name, fits, reference or dirs[0].name, failed)
    store.write_atomic(exp_dir / "comparison.md", markdown(c))
    store.write_json(exp_dir / "comparison.json", jsonable(asdict(c)))
    plot(fits, c, exp_dir / "frontiers.png")
    return c


class CompareVariants(Callback):
    """Hydra callback of an experiment's multirun (configs/experiment/*.yaml): once every variant's job
    has returned, compare the variants under `dir` and print the table."""

    def __init__(self, dir: str, reference: str = "") -> None:
        self.dir, self.reference = Path(dir), reference

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        try:
            c = compare_dir(self.dir, self.reference)
        except FitError as exc:
            print(f"comparison skipped: {exc}", file=sys.stderr)
            return
        print(markdown(c))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.compare", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="experiment directory, e.g. runs/exp-architecture")
    parser.add_argument("--reference", default="", help="variant to compare against (default: first by name)")
    args = parser.parse_args(argv)
    try:
        c = compare_dir(args.dir, args.reference)
    except FitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(markdown(c), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
