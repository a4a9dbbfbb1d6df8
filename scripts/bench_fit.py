"""Time `harness.fit.fit_sweep` on a synthetic sweep: 300 runs (12 IsoFLOP budgets x 25 sizes, 1% noise,
8-point training curves) and 1000 bootstrap resamples, as the fitter's budget asks (<= 30 s on 2 cores).

    python scripts/bench_fit.py [--runs-per-budget 25] [--budgets 12] [--bootstrap 1000]

Prints `runs=300 bootstrap=1000 wall_s=...` and, per analysis, the resamples it dropped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from harness.config import FitConfig  # noqa: E402
from harness.fit import LossSurface, fit_sweep  # noqa: E402
from harness.fit.simulate import isoflop_observations  # noqa: E402

SURFACE = LossSurface(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al. 2022


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=int, default=12)
    ap.add_argument("--runs-per-budget", type=int, default=25)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--noise", type=float, default=0.01)
    args = ap.parse_args()
    obs = isoflop_observations(
        SURFACE,
        np.logspace(15, 19, args.budgets),
        sizes=args.runs_per_budget,
        noise=args.noise,
        curves=8,
        rng=np.random.default_rng(0),
    )
    t0 = time.perf_counter()
    report = fit_sweep(obs, FitConfig(bootstrap=args.bootstrap, flops="6n"), bayes_loss=SURFACE.E)
    wall = time.perf_counter() - t0
    print(f"runs={report.n_runs} bootstrap={args.bootstrap} wall_s={wall:.2f}")
    print(f"dropped resamples: {report.to_dict()['bootstrap']['failed']}")
    print(report.verdict.sentence)


if __name__ == "__main__":
    main()
