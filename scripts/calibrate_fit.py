"""The verdict's error rates on planned designs at given noise levels, by the fit's own calibration.

    python scripts/calibrate_fit.py [--draws 400] [--noise 0.005 0.01 0.02] [--designs cpu dense smoke]
                                    [--holdout-law offset|pure] [--surface E A B alpha beta] [--k 7]
                                    [--set KEY=VALUE ...]

Designs: a preset planned by harness.plan without training (`cpu`: configs/sweep/cpu.yaml; `smoke`;
`stdlib`: the cpu preset on data=stdlib, BPE of 1,024 ids; `cpu_text`: configs/sweep/cpu_text.yaml; the
vocabulary is data.vocab_size, no source is built; --set adds overrides, such as other budgets), or
`dense`, the design issue 14 asked for (9 budgets a quarter decade apart over 1e10-1e12 FLOPs, 6 sizes
1.5x apart around each optimum, the two sizes nearest the optimum trained twice at two budgets). Losses
come from --surface, L(N, D) = E + A/N^alpha + B/D^beta (default: one at the cpu sweep's scale, L ~ 2.3
nats at 1e10 FLOPs, 1.2 at 1e12, alpha_C = 0.14; `dense` places its runs by it with C = k N D); the
noise is given as each run's val_loss_se and matched exactly by the replicates' spread. For each design
and noise level, prints one line: `design=... noise=... false_no=... false_yes=... <truth>=<share
judged yes> ... lr_yes=... lr_no=... wall_s=...`: lr_yes = (1 - false_no) / false_yes and lr_no =
(1 - false_yes) / false_no, how many times likelier each outcome is under the laws it names than under
the others (the verdict reports an outcome below the rule's min_likelihood_ratio as "untested",
docs/fit.md); wall_s: one whole fit without bootstrap, its calibration at --draws per law.
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
from harness.fit.verdict import likelihood_ratios  # noqa: E402

REFERENCE = LossSurface(E=0.0, A=13.3, B=34.8, alpha=0.28, beta=0.28)
K = 7.0  # C / (N D) of the cpu ladder under the full count (6.6-8.0)
PRESETS = {
    "cpu": ["sweep=cpu"],
    "smoke": ["sweep=smoke"],
    "stdlib": ["sweep=cpu", "data=stdlib"],
    "cpu_text": ["sweep=cpu_text"],
}


def preset_design(overrides: list[str], surface: LossSurface) -> Observations:
    """A preset's runs (N, D, C, budget, seed), planned without training, with the surface's losses."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from harness.config import register_configs
    from harness.plan import plan_runs

    register_configs()
    configs = str(Path(__file__).resolve().parent.parent / "configs")
    with initialize_config_dir(config_dir=configs, version_base="1.3"):
        cfg = OmegaConf.to_object(compose("config", overrides=[*overrides, "logger=off"]))
    specs = plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="calibrate", precision="fp32")
    N = np.array([s.params.total for s in specs], dtype=float)
    D = np.array([s.tokens for s in specs], dtype=float)
    C = np.array([s.flops for s in specs])
    budget = np.array([f"{s.budget:g}" for s in specs])
    seed = np.array([str(s.train.seed) for s in specs])
    ids, L = [s.run_id for s in specs], surface.loss(N, D)
    return Observations(ids, N, D, C, L, budget=budget, seed=seed, design=cfg.sweep.design)


def dense_design(surface: LossSurface, k: float) -> Observations:
    return ladder_observations(surface, 1e10 * 10 ** (np.arange(9) / 4), k=k, replicate=(2, 6))


def with_noise(obs: Observations, noise: float) -> Observations:
    """The noise as each run's val_loss_se; the runs of a replicated configuration (same N, D) are set
    apart from their mean by evenly spaced offsets in log L whose sample standard deviation is exactly
    `noise`, so that their pooled spread, which the fit prefers, measures the same."""
    L = obs.L.copy()
    if obs.seed is not None:
        for n, d in set(zip(obs.N, obs.D, strict=True)):
            runs = np.flatnonzero(np.isclose(obs.N, n) & np.isclose(obs.D, d))
            if runs.size > 1:
                offsets = np.linspace(-1.0, 1.0, runs.size)
                L[runs] *= np.exp(noise * offsets / offsets.std(ddof=1))
    return dataclasses.replace(obs, L=L, L_se=noise * L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--noise", type=float, nargs="+", default=[0.005, 0.01, 0.02])
    ap.add_argument("--designs", nargs="+", choices=(*PRESETS, "dense"), default=["cpu", "dense"])
    ap.add_argument("--holdout-law", choices=("offset", "pure"), default="offset")
    ap.add_argument("--surface", type=float, nargs=5, metavar=("E", "A", "B", "ALPHA", "BETA"))
    ap.add_argument("--k", type=float, default=K, help="C / (N D) of the dense design")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides of the presets")
    args = ap.parse_args()
    surface = LossSurface(*args.surface) if args.surface else REFERENCE
    cfg = FitConfig(bootstrap=0, calibration_draws=args.draws)
    rules = FitRules(holdout_law=args.holdout_law)
    for name in args.designs:
        if name == "dense":
            base = dense_design(surface, args.k)
        else:
            base = preset_design([*PRESETS[name], *args.set], surface)
        for noise in args.noise:
            obs = with_noise(base, noise)
            t0 = time.perf_counter()
            r = fit_sweep(obs, cfg, rules=rules)
            wall = time.perf_counter() - t0
            c = r.calibration
            rates = " ".join(f"{k}={v:.3f}" for k, v in c.yes_rate.items())
            lr = likelihood_ratios(c.false_no, c.false_yes)
            ratios = f"lr_yes={lr['yes']:.3g} lr_no={lr['no']:.3g}"
            print(
                f"design={name} law={args.holdout_law} runs={r.n_runs} budgets={len(r.budgets.labels)} "
                f"noise={noise} "
                f"false_no={c.false_no:.3f} false_yes={c.false_yes:.3f} {rates} {ratios} wall_s={wall:.2f}"
            )


if __name__ == "__main__":
    main()
