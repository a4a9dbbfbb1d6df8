"""Approach 2 on Porian et al. 2024's IsoFLOP points (../shared/data/porian/) beside the authors' a,
and the verdict the fit gives each configuration.

    python scripts/porian_check.py [--window 2.0] [--bootstrap 200] [--draws 200]

Prints one line per configuration: `config=... a=... ci=[...] authors=... authors_ci=[...] inside=...
verdict=... checked=... likelihood_ratio=... false_no=... false_yes=... holdout_error=...` (verdict: what
the fit says; checked: what its checks alone say; the calibration's rates at --draws per law, 0: none).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from harness.config import FitConfig  # noqa: E402
from harness.fit import Observations, fit_sweep  # noqa: E402
from harness.fit.rules import FitRules  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "porian"


def read(name: str) -> Observations:
    with open(DATA / f"{name}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    num = {k: col[k].astype(float) for k in ("params_total", "tokens", "flops", "val_loss")}
    return Observations(
        col["run_id"], num["params_total"], num["tokens"], num["flops"], num["val_loss"], budget=col["budget"]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--draws", type=int, default=200)
    args = ap.parse_args()
    authors = json.loads((DATA / "authors_a.json").read_text())
    cfg = FitConfig(bootstrap=args.bootstrap, calibration_draws=args.draws)
    rules = FitRules(isoflop_window=args.window)
    for name, want in authors.items():
        r = fit_sweep(read(name), cfg, rules=rules)
        iso, v, c = r.isoflop, r.verdict, r.calibration
        rates = (
            f"false_no={c.false_no:.4f} false_yes={c.false_yes:.4f}" if c else "false_no=none false_yes=none"
        )
        lr = "none" if v.likelihood_ratio is None else f"{v.likelihood_ratio:.3g}"
        lo, hi = want["a_ci95"]
        ci = iso.ci.get("a") or (float("nan"), float("nan"))
        print(
            f"config={name} a={iso.a:.3f} ci=[{ci[0]:.3f}, {ci[1]:.3f}] authors={want['a']:.3f} "
            f"authors_ci=[{lo:.3f}, {hi:.3f}] inside={lo <= iso.a <= hi} verdict={v.outcome} "
            f"checked={v.checked} likelihood_ratio={lr} {rates} "
            f"holdout_error={v.numbers['holdout_error']:.4f}"
        )


if __name__ == "__main__":
    main()
