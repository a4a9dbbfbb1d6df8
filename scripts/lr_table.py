"""An LR scan's table and the power-law LR rule through its optima: the cpu preset's
(configs/sweep/lr_scan.yaml) and each experiment arm's (configs/experiment/lr_scan.yaml).

    .venv/bin/python -m harness.sweep sweep=lr_scan      # one sweep per LR, runs/lr_scan/lr<LR>/
    .venv/bin/python scripts/lr_table.py runs/lr_scan
    .venv/bin/python scripts/lr_table.py runs/exp-lr_scan/llama-adamw-next_token

Reads every results.csv under the directory (one sweep per scanned LR) and prints a markdown table:
one row per (width, budget), one column per peak LR, the val loss (± its SE; bold: the row's best;
"div" where the run diverged). Each row's optimum is the vertex of a parabola in log10(LR) through its
best LR and the two beside it (the grid's best at an edge). Then the rule `train.lr_rule=power`,
peak LR = lr * min(1, lr_ref_width / width)^lr_exponent, fitted to every row's optimum by least
squares in log LR: for each scanned width as lr_ref_width, lr is the geometric mean of the optima at
widths up to it and lr_exponent the slope through the optima above it; the reference with the
smallest squared error wins. Printed as the train.* settings that give it.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path


def read_rows(root: Path) -> list[dict]:
    """Every results row of every sweep under root."""
    rows = []
    for path in sorted(root.glob("*/results.csv")):
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def optimum(points: dict[float, float]) -> float:
    """LR at the vertex of the parabola in log10(LR) through the best point and its two neighbours."""
    lrs = sorted(points)
    i = min(range(len(lrs)), key=lambda j: points[lrs[j]])
    if i in (0, len(lrs) - 1):
        return lrs[i]
    x = [math.log10(lr) for lr in lrs[i - 1 : i + 2]]
    y = [points[lr] for lr in lrs[i - 1 : i + 2]]
    denom = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
    a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denom
    b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / denom
    return 10 ** (-b / (2 * a)) if a > 0 else lrs[i]


def optima(rows: list[dict]) -> list[tuple[int, float]]:
    """(width, optimum LR) of each scanned (width, budget), in order of width and budget."""
    cells: dict[tuple[int, float], dict[float, float]] = {}
    for r in rows:
        if r["status"] == "done":
            cell = cells.setdefault((int(r["width"]), float(r["budget"])), {})
            cell[float(r["peak_lr"])] = float(r["val_loss"])
    return [(width, optimum(done)) for (width, _), done in sorted(cells.items())]


def table(rows: list[dict]) -> str:
    """The scan's markdown table (val loss per width x LR, each row's optimum) and the rule's settings."""
    lrs = sorted({float(r["peak_lr"]) for r in rows})
    cells: dict[tuple[int, float], dict[float, dict]] = {}
    for r in rows:
        cells.setdefault((int(r["width"]), float(r["budget"])), {})[float(r["peak_lr"])] = r
    lr_cols = [f"{lr:g}" for lr in lrs]
    head = ["width", "params", "budget (FLOPs or tokens)", "batch", "steps", *lr_cols, "optimum"]
    lines = ["| " + " | ".join(head) + " |", "| --- " * (len(lrs) + 6) + "|"]
    best = optima(rows)
    for ((width, budget), by_lr), (_, opt) in zip(sorted(cells.items()), best, strict=True):
        done = {lr: float(r["val_loss"]) for lr, r in by_lr.items() if r["status"] == "done"}
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
        row = [str(width), r["params_total"], f"{budget:.3g}", r["batch_size"], r["steps"], *shown]
        row.append(f"{opt:.3g}")
        lines.append("| " + " | ".join(row) + " |")
    ref, lr, exponent = fit_rule(best)
    settings = f"train.lr={lr:.3g} train.lr_ref_width={ref} train.lr_exponent={exponent:.3f}"
    lines += ["", f"rule: train.lr_rule=power {settings}"]
    return "\n".join(lines)


def main(root: Path) -> None:
    rows = read_rows(root)
    if not rows:
        sys.exit(f"no results.csv under {root}")
    print(table(rows))
    ref, lr, exponent = fit_rule(optima(rows))
    for width, opt in optima(rows):
        print(f"width={width} optimum={opt:.3g} rule={lr * min(1.0, ref / width) ** exponent:.3g}")


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


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/lr_scan"))
