"""Measure the fixed costs of a CPU sweep that `harness.estimate.CPU_COSTS` holds, one key=value line each.

    python scripts/estimate_costs.py [--preset smoke] [--sweep DIR ...]

CPU seconds of each part (a part that runs in a process of its own is measured in a fresh one), and the
same converted to a core of `REFERENCE_PEAK` (`reference_s`, what CPU_COSTS holds): cpu_s x this core's
matmul peak by CPU time / REFERENCE_PEAK. Counting CPU time, not wall time, leaves out the time other
work on a shared machine takes from these processes; the conversion takes out most of what sharing the
caches still costs. Lines:
    pool      a fresh process importing what the training processes' forkserver preloads
    process   a training process's own start: its data source and first model and two steps
    tracker   the first W&B run of a process (offline): W&B's local service starting
    run       each further run outside its training loop (model, optimizer, files, its offline W&B run),
              mean of 5 runs of no steps
    fit       fit_sweep on the preset's planned runs (synthetic losses, 1% noise) without resamples or
              calibration; resample, draw: what each bootstrap resample and each calibration draw adds
    report    for each --sweep (a finished sweep): writing report.md and the plots, and the W&B fit run
(The studies a Hydra callback runs after a sweep, abilities and compare, are not the sweep's: not here.)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "scripts"))

from harness.estimate import REFERENCE_PEAK  # noqa: E402

FRESH = {  # code run in a fresh process; each measured part is what it adds to the one before
    "bare": "",
    "pool": "import harness.train, harness.tracking",
    "process": """
import harness.train, harness.tracking
from harness.console import measure_steps
from harness.data import make_source
from harness.device import resolve_device
from harness.plan import plan_runs
from harness.compose import compose_config
cfg = compose_config("sweep={preset}", "logger=off")
source = make_source(cfg.data)
dev = resolve_device(cfg.train, 1)
spec = min(plan_runs(cfg, vocab_size=source.vocab_size, data_fingerprint="x", precision="fp32"),
           key=lambda s: s.flops)
measure_steps([spec], source, dev, cfg.data.val_tokens)
""",
    "tracker": """
import harness.train, harness.tracking
from harness.config import LoggerConfig
from harness.tracking import open_run
open_run(LoggerConfig(mode="offline"), sweep_dir=Path("{tmp}"), run_id="r0", name="r0", job_type="train",
         config={{}}, group="g", tags=()).finish()
""",
}


def child_cpu(code: str) -> float:
    """CPU seconds of a fresh Python process running `code` (and of the processes it waits for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    prelude = "import torch; torch.set_num_threads(1)\nfrom pathlib import Path\n" if code else ""
    subprocess.run([sys.executable, "-c", prelude + code], check=True, env=env, cwd=ROOT, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_of(fn: Callable[[], object]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def cpu_peak() -> float:
    """This core's fp32 matmul rate by CPU time (harness.peak's sizes), FLOP/s."""
    import torch

    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        best = max(best, 10 * 2 * n**3 / cpu_of(lambda a=a, b=b: [a @ b for _ in range(10)]))
    return best


def fresh_costs(preset: str, tmp: str) -> dict[str, float]:
    """pool, process, tracker: each fresh process's CPU less the one it extends (the median of 3)."""
    cpu = {
        name: sorted(child_cpu(code.format(preset=preset, tmp=tmp)) for _ in range(3))[1]
        for name, code in FRESH.items()
    }
    return {"pool": cpu["pool"] - cpu["bare"], "process": cpu["process"] - cpu["pool"],
            "tracker": cpu["tracker"] - cpu["pool"]}  # fmt: skip


def run_cost(preset: str, tmp: str) -> float:
    """A run's CPU outside its training loop in a process that has trained one: 5 runs of no steps."""
    from harness.compose import compose_config
    from harness.config import LoggerConfig
    from harness.data import make_source
    from harness.device import resolve_device
    from harness.execute import Trainer
    from harness.plan import plan_runs
    from harness.tracking import open_run

    cfg = compose_config(f"sweep={preset}", "logger=off")
    source = make_source(cfg.data)
    dev = resolve_device(cfg.train, 1)
    specs = plan_runs(cfg, vocab_size=source.vocab_size, data_fingerprint="x", precision=dev.precision)
    cfg = dataclasses.replace(cfg, logger=LoggerConfig(mode="offline"), sweep=dataclasses.replace(
        cfg.sweep, progress=False))  # fmt: skip
    trainer = Trainer(cfg, Path(tmp), source, dev, lambda lg, **kw: open_run(lg, group="g", tags=(), **kw))
    empty = [dataclasses.replace(s, steps=0, train=dataclasses.replace(s.train, evals=0)) for s in specs[:6]]
    trainer.train_one(empty[0], "", (empty[0],))  # warm: first model, W&B service
    return cpu_of(lambda: [trainer.train_one(s, "", (s,)) for s in empty[1:]]) / 5


def fit_costs(preset: str) -> dict[str, float]:
    """fit_sweep's CPU on the preset's planned runs: fixed, per resample, per calibration draw."""
    from calibrate_fit import PRESETS, REFERENCE, preset_design, with_noise

    from harness.config import FitConfig
    from harness.fit import fit_sweep

    obs = with_noise(preset_design(PRESETS.get(preset, [f"sweep={preset}"]), REFERENCE), 0.01)
    fit_sweep(obs, FitConfig(bootstrap=0, calibration_draws=0))  # warm: imports, first calls
    base, b, d = (cpu_of(lambda b=b, d=d: fit_sweep(obs, FitConfig(bootstrap=b, calibration_draws=d)))
                  for b, d in ((0, 0), (500, 0), (0, 100)))  # fmt: skip
    return {"fit": base, "resample": (b - base) / 500, "draw": (d - base) / 100}


def sweep_costs(sweep_dir: Path, tmp: str) -> dict[str, float]:
    """A finished sweep's report (report.md, plots, the W&B fit run), CPU s."""
    from harness import report
    from harness.config import FitConfig, LoggerConfig
    from harness.fit import fit_sweep
    from harness.refit import read_input
    from harness.tracking import log_fit

    cfg = FitConfig(bootstrap=100, calibration_draws=0)
    rows, curves, bayes, _, meta = read_input(sweep_dir, cfg)
    obs, _, _ = report.build_observations(rows, cfg, curves=curves, design=meta.get("design"))
    fitted = fit_sweep(obs, cfg, bayes_loss=bayes)
    out = Path(tmp, sweep_dir.name)
    write = cpu_of(lambda: report.write_report(fitted, out, meta=meta))
    plots = sorted(out.glob("plots/*.png"))
    logger = LoggerConfig(mode="offline")
    fit = fitted.to_dict()
    log = cpu_of(
        lambda: log_fit(
            logger, sweep_dir=out, fit=fit, settings={}, plots=plots, rows=rows, files=[], group="g"
        )
    )
    return {"report": write + log}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--sweep", type=Path, nargs="*", default=[])
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    peak = cpu_peak()
    print(f"speed cpu_peak={peak:.3g} reference_peak={REFERENCE_PEAK:.3g} load={os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="estimate_costs_") as tmp:
        costs = {**fresh_costs(args.preset, tmp), "run": run_cost(args.preset, tmp), **fit_costs(args.preset)}
        lines = [(name, f"preset={args.preset}", cpu) for name, cpu in costs.items()]
        for sweep_dir in args.sweep:
            lines += [(name, f"sweep={sweep_dir}", cpu) for name, cpu in sweep_costs(sweep_dir, tmp).items()]
        for name, where, cpu in lines:
            print(
                f"cost={name} {where} cpu_s={cpu:.4g} reference_s={cpu * peak / REFERENCE_PEAK:.4g}",
                flush=True,
            )
    print(f"speed load_after={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
