"""The LR scan's table, the power-law LR rule through its optima, and a loss surface through its best runs.

    .venv/bin/python -m harness.sweep sweep=lr_scan      # one sweep per LR, runs/lr_scan/lr<LR>/
    .venv/bin/python scripts/lr_table.py runs/lr_scan [more scan directories]

Reads every results.csv in or under the directories (one sweep per scanned LR) and prints a markdown table:
one row per (width, budget, batch), one column per peak LR, the val loss (± its SE; bold: the row's
best; "div" where the run diverged). Each row's optimum is the vertex of a parabola in log10(LR)
through its best LR and the two beside it (the grid's best at an edge), and `loss` the parabola's value
there (the best run's loss at an edge). Then the rule `train.lr_rule=power`, peak LR = lr * min(1,
lr_ref_width / width)^lr_exponent, fitted to every row's optimum by least squares in log LR: for each
scanned width as lr_ref_width, lr is the geometric mean of the optima at widths up to it and
lr_exponent the slope through the optima above it; the reference with the smallest squared error
wins. Printed as the train.* settings that give it. Last, the surface E + A/N^alpha + B/D^beta with E
held at 0 closest to each (width, budget)'s best run (harness.fit's parametric fit), for
`scripts/calibrate_fit.py --surface`, and where runs were trained with several seeds (sweep.seeds), the
seed noise: the pooled standard deviation of log L within each configuration, as the fit measures it.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import numpy as np  # noqa: E402

from harness.fit import FitError  # noqa: E402
from harness.fit.parametric import fit_parametric, fit_surface_with_floor  # noqa: E402


def read_rows(roots: list[Path]) -> list[dict]:
    """Every results row of every sweep in or under the roots (a sweep's directory, or one of sweeps)."""
    rows = []
    for path in sorted(p for root in roots for p in [*root.glob("results.csv"), *root.glob("*/results.csv")]):
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def optimum(points: dict[float, float]) -> tuple[float, float]:
    """(LR, loss) at the vertex of the parabola in log10(LR) through the best point and its two
    neighbours; the best point itself at an edge of the grid."""
    lrs = sorted(points)
    i = min(range(len(lrs)), key=lambda j: points[lrs[j]])
    if i in (0, len(lrs) - 1):
        return lrs[i], points[lrs[i]]
    x = [math.log10(lr) for lr in lrs[i - 1 : i + 2]]
    y = [points[lr] for lr in lrs[i - 1 : i + 2]]
    a, b, c = np.polyfit(x, y, 2)
    if a <= 0:
        return lrs[i], points[lrs[i]]
    vertex = -b / (2 * a)
    return 10**vertex, c - b * b / (4 * a)


def main(roots: list[Path]) -> None:
    rows = read_rows(roots)
    if not rows:
        sys.exit(f"no results.csv under {', '.join(map(str, roots))}")
    lrs = sorted({float(r["peak_lr"]) for r in rows})
    cells: dict[tuple[int, float, int], dict[float, dict]] = {}
    for r in rows:
        if r["seed"] not in ("", "0"):
            continue  # replicates: the seed noise below
        key = (int(r["width"]), float(r["budget"]), int(r["batch_size"]))
        cells.setdefault(key, {})[float(r["peak_lr"])] = r
    head = [
        "width",
        "params",
        "budget (FLOPs)",
        "batch",
        "steps",
        *(f"{lr:g}" for lr in lrs),
        "optimum",
        "loss",
    ]
    print("| " + " | ".join(head) + " |")
    print("| --- " * len(head) + "|")
    optima = []
    for (width, budget, batch), by_lr in sorted(cells.items()):
        done = {lr: float(r["val_loss"]) for lr, r in by_lr.items() if r["status"] == "done"}
        lr_opt, loss_opt = optimum(done)
        optima.append((width, lr_opt))
        low = min(done, key=done.get)
        shown = []
        for lr in lrs:
            r = by_lr.get(lr)
            if r is None:
                shown.append("")
            elif r["status"] != "done":
                shown.append("div")
            else:
                text = f"{float(r['val_loss']):.4f} ± {float(r['val_loss_se']):.4f}"
                shown.append(f"**{text}**" if lr == low else text)
        r = next(iter(by_lr.values()))
        row = [str(width), r["params_total"], f"{budget:.3g}", str(batch), r["steps"], *shown]
        print("| " + " | ".join([*row, f"{lr_opt:.3g}", f"{loss_opt:.4f}"]) + " |")
    ref, lr, exponent = fit_rule(optima)
    print(
        f"\nrule: train.lr_rule=power train.lr={lr:.3g} train.lr_ref_width={ref} "
        f"train.lr_exponent={exponent:.3f}"
    )
    for width, opt in optima:
        print(f"width={width} optimum={opt:.3g} rule={lr * min(1.0, ref / width) ** exponent:.3g}")
    print(surface_line(rows))
    print(noise_line(rows))


def fit_rule(optima: list[tuple[int, float]]) -> tuple[int, float, float]:
    """(lr_ref_width, lr, lr_exponent) of the flat-then-power rule nearest the optima in log LR."""
    fits = []
    for ref in sorted({w for w, _ in optima}):
        low = [math.log(o) for w, o in optima if w <= ref]
        log_lr = sum(low) / len(low)
        high = [(math.log(w / ref), math.log(o) - log_lr) for w, o in optima if w > ref]
        exponent = -sum(x * y for x, y in high) / sum(x * x for x, _ in high) if high else 0.0
        err = sum((y - log_lr) ** 2 for y in low) + sum((y + exponent * x) ** 2 for x, y in high)
        fits.append((err, ref, math.exp(log_lr), exponent))
    _, ref, lr, exponent = min(fits)
    return ref, lr, exponent


def surface_line(rows: list[dict]) -> str:
    """`surface: E=0 A=... B=... alpha=... beta=...` through each (width, budget)'s best finished run."""
    best: dict[tuple[str, str], dict] = {}
    for r in rows:
        key = (r["width"], r["budget"])
        if r["status"] == "done" and (key not in best or float(r["val_loss"]) < float(best[key]["val_loss"])):
            best[key] = r
    N, D, L = (np.array([float(r[c]) for r in best.values()]) for c in ("params_total", "tokens", "val_loss"))
    try:
        s = fit_surface_with_floor(N, D, L, fit_parametric(N, D, L), 0.0)
    except FitError as exc:
        return f"surface: not fitted ({exc})"
    return f"surface: E=0 A={s.A:.4g} B={s.B:.4g} alpha={s.alpha:.4g} beta={s.beta:.4g} points={len(best)}"


def noise_line(rows: list[dict]) -> str:
    """`noise: ...` the pooled standard deviation of log L over configurations trained with >1 seed."""
    groups: dict[tuple[str, ...], list[float]] = {}
    for r in rows:
        if r["status"] == "done":
            key = (r["width"], r["budget"], r["batch_size"], r["peak_lr"])
            groups.setdefault(key, []).append(math.log(float(r["val_loss"])))
    replicated = [g for g in groups.values() if len(g) > 1]
    dof = sum(len(g) - 1 for g in replicated)
    if not dof:
        return "noise: no replicate seeds"
    ss = sum(float(np.sum((np.array(g) - np.mean(g)) ** 2)) for g in replicated)
    return f"noise: seed_noise={math.sqrt(ss / dof):.4%} configurations={len(replicated)} dof={dof}"


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or [Path("runs/lr_scan")])
