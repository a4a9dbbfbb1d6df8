"""The verdict's error rates on two designs at three noise levels, by the fit's own calibration.

    python scripts/calibrate_fit.py [--draws 400] [--noise 0.005 0.01 0.02] [--designs cpu dense]
                                    [--holdout-law offset|pure]

Designs: `cpu`, the default cpu sweep (configs/sweep/cpu.yaml) planned by harness.plan without training;
`dense`, the design issue 14 asks for (9 budgets a quarter decade apart over 1e10-1e12 FLOPs, 6 sizes
1.5x apart around each optimum, the two sizes nearest the optimum trained twice at two budgets). Losses
come from a surface at the cpu sweep's scale (L ~ 2.3 nats at 1e10 FLOPs, 1.2 at 1e12, alpha_C = 0.14);
the noise is given as each run's val_loss_se and matched by the replicates' spread. For each design
and noise level, prints one line: `design=... noise=... false_no=... false_yes=... <truth>=<share
judged yes> ... wall_s=...` (wall_s: one whole fit without bootstrap, its calibration at --draws per law).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from harness.config import FitConfig  # noqa: E402
from harness.fit import LossSurface, Observations, fit_sweep  # noqa: E402
from harness.fit.rules import FitRules  # noqa: E402
from harness.fit.simulate import ladder_observations  # noqa: E402

REFERENCE = LossSurface(E=0.0, A=13.3, B=34.8, alpha=0.28, beta=0.28)
K = 7.0  # C / (N D) of the cpu ladder under the full count (6.6-8.0)


def cpu_design() -> Observations:
    """The default cpu sweep's runs (N, D, C, budget), planned without training."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from harness.config import register_configs
    from harness.data import make_source
    from harness.plan import plan_runs

    register_configs()
    configs = str(Path(__file__).resolve().parent.parent / "configs")
    with initialize_config_dir(config_dir=configs, version_base="1.3"):
        cfg = OmegaConf.to_object(compose("config", overrides=["sweep=cpu", "logger=off"]))
    source = make_source(cfg.data)
    specs = plan_runs(
        cfg, vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision="fp32"
    )
    N = np.array([s.params.total for s in specs], dtype=float)
    D = np.array([s.tokens for s in specs], dtype=float)
    C = np.array([s.flops for s in specs])
    budget = np.array([f"{s.budget:g}" for s in specs])
    L = REFERENCE.loss(N, D)
    return Observations([s.run_id for s in specs], N, D, C, L, budget=budget, design="isoflop")


def dense_design() -> Observations:
    return ladder_observations(REFERENCE, 1e10 * 10 ** (np.arange(9) / 4), k=K, replicate=(2, 6))


def with_noise(obs: Observations, noise: float) -> Observations:
    """The noise as each run's val_loss_se; replicate pairs (seed 0 and 1) are set noise / sqrt(2)
    apart from their mean, so that their pooled spread, which the fit prefers, measures the same."""
    L = obs.L.copy()
    if obs.seed is not None:
        L *= np.exp(
            np.where(obs.seed == "1", 1.0, -1.0) * noise / np.sqrt(2) * np.isin(obs.N, obs.N[obs.seed == "1"])
        )
    return dataclasses.replace(obs, L=L, L_se=noise * L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--noise", type=float, nargs="+", default=[0.005, 0.01, 0.02])
    ap.add_argument("--designs", nargs="+", choices=("cpu", "dense"), default=["cpu", "dense"])
    ap.add_argument("--holdout-law", choices=("offset", "pure"), default="offset")
    args = ap.parse_args()
    cfg = FitConfig(bootstrap=0, calibration_draws=args.draws)
    rules = FitRules(holdout_law=args.holdout_law)
    for name in args.designs:
        base = {"cpu": cpu_design, "dense": dense_design}[name]()
        for noise in args.noise:
            obs = with_noise(base, noise)
            t0 = time.perf_counter()
            r = fit_sweep(obs, cfg, rules=rules)
            wall = time.perf_counter() - t0
            c = r.calibration
            rates = " ".join(f"{k}={v:.3f}" for k, v in c.yes_rate.items())
            print(
                f"design={name} law={args.holdout_law} runs={r.n_runs} budgets={len(r.budgets.labels)} "
                f"noise={noise} "
                f"false_no={c.false_no:.3f} false_yes={c.false_yes:.3f} {rates} wall_s={wall:.2f}"
            )


if __name__ == "__main__":
    main()
