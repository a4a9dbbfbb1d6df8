"""Compare two finished sweeps of the same sizes and budgets, e.g. separate cosine runs against WSD
cooldown branches: compute each spent, the losses of matching (width, tokens) runs, and their fits.

    python -m harness.sweep sweep=cpu_grid logger=off   # separate cosine runs
    python -m harness.sweep sweep=cpu_wsd logger=off    # one main run per size + cooldown branches
    python scripts/compare_designs.py runs/cpu_grid runs/cpu_wsd

Prints key=value lines: `compute` (FLOPs spent by each, share saved by the second), `loss` (relative
differences of val_loss over matching runs, second - first), and per fitted parameter of the frontier
(L = E + (C0/C)^alpha) and the parametric law (L = E + A/N^alpha + B/D^beta) both values and the
relative difference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from harness import store  # noqa: E402

FITTED = {"frontier": ("alpha", "E", "C0"), "parametric": ("alpha", "beta", "E", "A", "B")}


def flops_spent(sweep_dir: Path, rows: list[dict]) -> float:
    """FLOPs the sweep trained (sweep.json; a sweep from before it was recorded: its runs' FLOPs)."""
    compute = (store.read_json(sweep_dir / "sweep.json") or {}).get("compute")
    return compute["flops_spent"] if compute else sum(float(r["flops"]) for r in rows)


def compare(first: Path, second: Path) -> list[str]:
    """The comparison's key=value lines."""
    rows = {d: [r for r in store.read_results_table(d) if r["status"] == "done"] for d in (first, second)}
    spent = {d: flops_spent(d, rows[d]) for d in (first, second)}
    lines = [
        f"compute first_flops={spent[first]:.4g} second_flops={spent[second]:.4g} "
        f"saved={100 * (1 - spent[second] / spent[first]):.1f}%"
    ]
    loss = {d: {(r["width"], r["tokens"]): float(r["val_loss"]) for r in rows[d]} for d in (first, second)}
    pairs = sorted(loss[first].keys() & loss[second].keys())
    if pairs:
        rel = [loss[second][k] / loss[first][k] - 1 for k in pairs]
        lines.append(
            f"loss pairs={len(pairs)} mean_rel_diff={statistics.fmean(rel):+.4f} "
            f"mean_abs_rel_diff={statistics.fmean(abs(x) for x in rel):.4f} "
            f"max_abs_rel_diff={max(abs(x) for x in rel):.4f}"
        )
    fits = {d: store.read_json(d / "fit.json") or {} for d in (first, second)}
    for law, names in FITTED.items():
        a, b = fits[first].get(law), fits[second].get(law)
        if not (a and b):
            lines.append(f"{law} missing_in={'first' if not a else 'second'}")
            continue
        for name in names:
            x, y = (float("nan") if v is None else v for v in (a[name], b[name]))  # nan is stored as null
            diff = y / x - 1 if x else float("nan")
            lines.append(f"{law} param={name} first={x:.4g} second={y:.4g} rel_diff={diff:+.3f}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=Path, help="sweep directory, e.g. runs/cpu_grid")
    ap.add_argument("second", type=Path, help="sweep directory, e.g. runs/cpu_wsd")
    args = ap.parse_args()
    print("\n".join(compare(args.first, args.second)))


if __name__ == "__main__":
    main()
