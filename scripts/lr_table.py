"""The LR scan's table and the power-law LR rule through its optima (configs/sweep/lr_scan.yaml).

    .venv/bin/python -m harness.sweep sweep=lr_scan      # one sweep per LR, runs/lr_scan/lr<LR>/
    .venv/bin/python scripts/lr_table.py runs/lr_scan

Reads every results.csv under the directory (one sweep per scanned LR) and prints a markdown table:
one row per (width, budget), one column per peak LR, the val loss (± its SE; bold: the row's best;
"div" where the run diverged). Each row's optimum is the vertex of a parabola in log10(LR) through its
best LR and the two beside it (the grid's best at an edge). Then the rule through the optima of the
smallest and the largest width: peak LR = lr * (lr_ref_width / width)^lr_exponent, printed as the
train.* settings that give it (lr_ref_width: the smallest width).
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


def main(root: Path) -> None:
    rows = read_rows(root)
    if not rows:
        sys.exit(f"no results.csv under {root}")
    lrs = sorted({float(r["peak_lr"]) for r in rows})
    cells: dict[tuple[int, float], dict[float, dict]] = {}
    for r in rows:
        cells.setdefault((int(r["width"]), float(r["budget"])), {})[float(r["peak_lr"])] = r
    head = ["width", "params", "budget (FLOPs)", "batch", "steps", *(f"{lr:g}" for lr in lrs), "optimum"]
    print("| " + " | ".join(head) + " |")
    print("| --- " * (len(lrs) + 6) + "|")
    best = {}
    for (width, budget), by_lr in sorted(cells.items()):
        done = {lr: float(r["val_loss"]) for lr, r in by_lr.items() if r["status"] == "done"}
        best[width] = optimum(done)
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
        row = [
            str(width),
            r["params_total"],
            f"{budget:.3g}",
            r["batch_size"],
            r["steps"],
            *shown,
            f"{best[width]:.3g}",
        ]
        print("| " + " | ".join(row) + " |")
    small, large = min(best), max(best)
    exponent = math.log(best[small] / best[large]) / math.log(large / small)
    print(
        f"\nrule: train.lr_rule=power train.lr={best[small]:.3g} train.lr_ref_width={small} "
        f"train.lr_exponent={exponent:.3f}"
    )
    for width in sorted(best):
        rule = best[small] * (small / width) ** exponent
        print(f"width={width} optimum={best[width]:.3g} rule={rule:.3g}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/lr_scan"))
