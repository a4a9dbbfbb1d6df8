"""A training run on a shared machine: one torch thread against two, alone and beside other work.

    .venv/bin/python scripts/bench_shared.py [width=44] [steps=150] [repeats=3]

Trains the cpu preset's run of `width` at its lowest budget for `steps` steps (harness.train.train_run,
logging nothing) in a fresh process with `train.threads` 1 and 2, each `repeats` times, first alone and
then while a competing process keeps one core busy (a one-thread float32 matmul loop, as another user's
job would). Prints one `key=value` line per case (median wall seconds of the loop, its spread) and the
slowdown the competitor causes at each thread count. Run it on an otherwise quiet machine: the
competitor is the only other work it means to measure (the load average is printed).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPETITOR = "import torch; torch.set_num_threads(1); a = torch.randn(512, 512)\nwhile True: a @ a"
ONE_RUN = """
import dataclasses, sys, tempfile
from pathlib import Path
from harness.compose import compose_config
from harness.data import make_source
from harness.device import resolve_device
from harness.plan import plan_runs
from harness.train import train_run
from harness.tracking.wandb_run import NullLogger
width, steps, threads = (int(a) for a in sys.argv[1:4])
cfg = compose_config("sweep=cpu", "logger=off")
source = make_source(cfg.data)
dev = resolve_device(cfg.train, threads)
specs = plan_runs(cfg, vocab_size=source.vocab_size, data_fingerprint="x", precision="fp32")
spec = min((s for s in specs if s.shape.width == width), key=lambda s: s.flops)
train = dataclasses.replace(spec.train, evals=0, checkpoint_every=0)
spec = dataclasses.replace(spec, steps=steps, parent=None, fork_step=0, forks=(), train=train)
with tempfile.TemporaryDirectory() as tmp:
    print(train_run(spec, source, Path(tmp, "run"), NullLogger(), dev)["wall_s"])
"""


def run_once(width: int, steps: int, threads: int) -> float:
    """The training loop's wall seconds in a fresh process with `threads` torch threads."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, "-c", ONE_RUN, str(width), str(steps), str(threads)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    args = {k: int(v) for k, v in (a.split("=", 1) for a in argv)}
    width, steps, repeats = args.get("width", 44), args.get("steps", 150), args.get("repeats", 3)
    print(f"machine cores={os.cpu_count()} load={os.getloadavg()[0]:.2f} width={width} steps={steps}")
    medians = {}
    for shared in (False, True):
        competitor = None
        if shared:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR], env=env)
            time.sleep(3)  # let it start its loop
        try:
            for threads in (1, 2):
                times = [run_once(width, steps, threads) for _ in range(repeats)]
                medians[shared, threads] = statistics.median(times)
                print(
                    f"case shared={int(shared)} threads={threads} median_s={medians[shared, threads]:.3g} "
                    f"min_s={min(times):.3g} max_s={max(times):.3g} load={os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
    for threads in (1, 2):
        ratio = medians[True, threads] / medians[False, threads]
        print(f"slowdown threads={threads} shared_over_alone={ratio:.3g}")
    print(f"shared two_threads_over_one={medians[True, 2] / medians[True, 1]:.3g}")


if __name__ == "__main__":
    main(sys.argv[1:])
