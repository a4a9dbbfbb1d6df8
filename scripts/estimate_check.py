"""Does the start screen's time estimate hold? Runs each case as a user runs it, in a fresh process on an
empty sweep directory (W&B offline), and prints one key=value line per case:

    case=smoke estimate_s=21 actual_s=19.8 ratio=1.06 start_s=4.1 train_s=11.2 after_s=4.5
        load_before=0.12 load_after=0.9

    python scripts/estimate_check.py [--cases smoke cpu proportion abilities cpu_text]
        [--keep DIR | --in-place]

estimate_s: the start screen's `estimate   about ...` (its rounding: 2 significant digits); actual_s: the
command's wall time, launch to exit; ratio = estimate_s / actual_s (1.25 to 0.8 is within 25%). The
phases, from when each line reached this script: start_s to the estimate line, train_s from there to
the last run's line (`12:00:01 [9/9] ...`), after_s from there to exit (the fit, report, plots). load_*:
the 1-minute load average; times taken at a load above the cores (`os.cpu_count()`) measure the other
work too.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "smoke": ["sweep=smoke"],
    "cpu": ["sweep=cpu"],
    "proportion": ["experiment=proportion"],  # its reference variant, balanced
    "abilities": ["experiment=abilities"],
    "cpu_text": ["sweep=cpu_text"],
}
UNITS = {"s": 1, "min": 60, "h": 3600, "days": 86400}
RUN_LINE = re.compile(r"\d\d:\d\d:\d\d \[\d+/\d+\] ")  # a finished run's line


def estimate_seconds(line: str) -> float | None:
    """Seconds of a start screen's `estimate   about 5.7 min, ...` line; None if it is not one."""
    found = re.match(r"\s+estimate\s+about ([\d.e+]+) (s|min|h|days),", line)
    return float(found[1]) * UNITS[found[2]] if found else None


def run_case(name: str, sweep_dir: Path | None) -> dict[str, float | str]:
    """Run one case and time its phases (see the module docstring); sweep_dir None: the case's own
    directory under runs/, as a user's command writes it."""
    argv = [sys.executable, "-m", "harness.sweep", *CASES[name]]
    argv += [f"sweep.dir={sweep_dir}"] if sweep_dir is not None else []
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    estimate, at = None, {}
    tail = []
    for line in proc.stdout:
        now = time.perf_counter() - t0
        tail = [*tail[-20:], line]
        if estimate is None and (estimate := estimate_seconds(line)) is not None:
            at["start"] = now
        if RUN_LINE.match(line):
            at["trained"] = now
    proc.wait()
    actual = time.perf_counter() - t0
    if proc.returncode != 0 or estimate is None:
        sys.exit(f"case {name}: exit {proc.returncode}, estimate {estimate}:\n{''.join(tail)}")
    start, trained = at["start"], at.get("trained", at["start"])
    return {
        "case": name,
        "estimate_s": estimate,
        "actual_s": actual,
        "ratio": estimate / actual,
        "start_s": start,
        "train_s": trained - start,
        "after_s": actual - trained,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--keep", type=Path, help="write the sweeps here (kept), not in a temporary directory")
    where.add_argument("--in-place", action="store_true", help="write each sweep where its command does")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="estimate_check_") as tmp:
        base = args.keep or Path(tmp)
        for name in args.cases:
            figures = run_case(name, None if args.in_place else base / name)
            print(
                " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
