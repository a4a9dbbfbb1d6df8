"""Expected wall time of a planned sweep: each run's training and evaluations, and the sweep's fixed costs.

Pure (plan layer: no torch). A run's own time comes from one of two models:
- `Throughput` (a GPU, or a CPU planned without measuring): a run of N non-embedding parameters that
  trains C FLOPs (full convention, what it computes itself: a WSD branch only its cooldown, its main run
  the rest) takes C / (MFU(N) x peak), where peak is the device's FLOP/s (`harness.flops.PEAK_FLOPS`,
  bf16 dense, for a GPU; a measured fp32 matmul rate for a CPU) and MFU(N) the share of it a run of that
  size achieves, read off a table of (params, MFU) points, linear in log10(params) between points and
  flat outside them; evaluations add their forward passes (evals x val_tokens x FLOPs per token / 3).
- `StepTimes` (a CPU sweep about to start): seconds per step and per evaluation measured just now on a
  few of the plan's own runs, so per-step overheads of small models and small batches are in them.
The sweep's wall time adds its `Overheads` (`sweep_overheads`: what already ran, the training processes'
start, each run's fixed cost, the fit and report after) to the sum over runs, or with k runs at once
(one per core on a CPU) to the larger of sum / k and the longest run.

The MFU tables below are assumptions until measured (`scripts/gpu_check.py` prints the MFU of three sizes
of the gpu ladder on the device it runs on; `throughput_from_runs` reads it off a sweep's finished runs).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.flops import peak_flops
from harness.plan import RunSpec, training_order

# MFU of one run alone on an H100-class GPU (bf16 autocast, torch.compile, fused AdamW, the gpu preset's
# 128 x 256-token batch), by non-embedding params (~ total with the gpu ladder's alphabet of 32).
# ASSUMED, not measured: tiny models are bound by kernel launches and memory traffic (a width-144 matmul
# cannot fill the tensor cores), 100M-parameter models reach about what nanoGPT-style GPT-2 small
# training reports with torch.compile (35-45%).
ASSUMED_GPU_MFU: tuple[tuple[float, float], ...] = ((1e6, 0.04), (1e7, 0.20), (1e8, 0.40), (1e9, 0.45))

# MFU of one run alone on one CPU core (one torch thread) against the fp32 matmul peak of that core, by
# non-embedding params: the cpu preset's ladder (depth 2, one head) as its default sweep measured it,
# median per size of tokens_per_s x FLOPs per token / peak (`throughput_from_runs`; `make sweep` on a
# fresh clone, 2 quiet cores, two runs at once, peak 1.15e11 FLOP/s). Keyed by non-embedding params,
# the same widths on data=stdlib (1,024 ids) measured within 1.5x of it (6.3% at width 10, 44% at 52);
# keyed by total params they would read 25-52%. Small sizes are bound by per-step overhead; beyond the
# ladder flat, an assumption.
ASSUMED_CPU_MFU: tuple[tuple[float, float], ...] = (
    (2.8e3, 0.05), (6.7e3, 0.13), (1.4e4, 0.19), (4.7e4, 0.35), (1.55e5, 0.52)
)  # fmt: skip


@dataclass(frozen=True)
class Throughput:
    """How fast one device trains a model of a given size: a peak and the share of it reached (MFU)."""

    device: str  # e.g. "H100 SXM", "cpu"
    peak_flops: float  # FLOP/s the MFU is a share of
    mfu: tuple[tuple[float, float], ...]  # (non-embedding params, MFU) points, ascending in params
    basis: str  # where the peak and the MFU come from, in a few words

    def __post_init__(self) -> None:
        if not self.peak_flops > 0:
            raise ValueError(f"peak_flops: must be > 0, got {self.peak_flops!r}")
        if not self.mfu or any(not 0 < m <= 1 or n <= 0 for n, m in self.mfu):
            raise ValueError(f"mfu: need (params > 0, 0 < MFU <= 1) points, got {self.mfu!r}")
        if list(self.mfu) != sorted(self.mfu):
            raise ValueError(f"mfu: points must be ascending in params, got {self.mfu!r}")

    def mfu_at(self, params: float) -> float:
        """MFU of a run of `params` non-embedding parameters: the table, linear in log10(params), flat
        outside it."""
        points = self.mfu
        if params <= points[0][0]:
            return points[0][1]
        for (n0, m0), (n1, m1) in zip(points, points[1:], strict=False):
            if params <= n1:
                w = math.log(params / n0) / math.log(n1 / n0)
                return m0 + w * (m1 - m0)
        return points[-1][1]

    def seconds(self, flops: float, params: float) -> float:
        """Seconds to compute `flops` FLOPs with a model of `params` non-embedding parameters."""
        return flops / (self.mfu_at(params) * self.peak_flops)

    def run_seconds(self, spec: RunSpec, val_tokens: int) -> float:
        """Seconds of one run's training steps and evaluations."""
        return self.seconds(run_flops(spec, val_tokens), spec.params.nonembedding)

    def describe(self, runs: Sequence[RunSpec]) -> str:
        """How the runs' times were made, in a few words."""
        sizes = sorted({s.params.nonembedding for s in runs})
        mfus = (
            f"MFU {self.mfu_at(sizes[0]):.1%} at {sizes[0]:.3g} to {self.mfu_at(sizes[-1]):.1%} at "
            f"{sizes[-1]:.3g} non-embedding params"
            if sizes
            else "no runs"
        )
        return f"at {self.peak_flops:.3g} FLOP/s peak ({self.basis}), {mfus}"


def step_flops(spec: RunSpec) -> float:
    """FLOPs of one training step of `spec` (full convention)."""
    return spec.flops_per_token * spec.batch_size * spec.shape.seq_len


def eval_flops(spec: RunSpec, val_tokens: int) -> float:
    """FLOPs of one evaluation of `spec`: forward passes over val_tokens (a third of forward + backward)."""
    return val_tokens * spec.flops_per_token / 3


def _loglog(points: tuple[tuple[float, float], ...], x: float) -> float:
    """y at x, linear in log-log between ascending (x, y) points; below them the first y (a fixed cost),
    above them the last y grown in proportion to x (FLOP-bound)."""
    if x <= points[0][0]:
        return points[0][1]
    if x >= points[-1][0]:
        return points[-1][1] * x / points[-1][0]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x <= x1:
            w = math.log(x / x0) / math.log(x1 / x0)
            return math.exp(math.log(y0) + w * math.log(y1 / y0))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class StepTimes:
    """Seconds per training step and per evaluation of a few of a plan's runs, measured on this machine
    (`harness.console.measure_steps`); another run's, by its FLOPs per step (per evaluation), in log-log
    between them: a small step costs about its overhead, a large one its FLOPs."""

    device: str
    steps: tuple[tuple[float, float], ...]  # (FLOPs per step, seconds per step), ascending
    evals: tuple[tuple[float, float], ...]  # (FLOPs per evaluation, seconds per evaluation), ascending

    def __post_init__(self) -> None:
        for name in ("steps", "evals"):
            points = getattr(self, name)
            if not points or any(x <= 0 or y <= 0 for x, y in points) or list(points) != sorted(points):
                raise ValueError(f"{name}: need ascending (FLOPs > 0, seconds > 0) points, got {points!r}")

    def run_seconds(self, spec: RunSpec, val_tokens: int) -> float:
        """Seconds of one run's training steps (a branch: its cooldown's) and evaluations."""
        per_eval = _loglog(self.evals, eval_flops(spec, val_tokens)) if val_tokens else 0.0
        steps = spec.steps - spec.fork_step
        return steps * _loglog(self.steps, step_flops(spec)) + run_evals(spec) * per_eval

    def describe(self, runs: Sequence[RunSpec]) -> str:
        (f0, t0), (f1, t1) = self.steps[0], self.steps[-1]
        return (
            f"steps measured now on {len(self.steps)} of its runs: {t0 * 1e3:.3g} ms at {f0:.3g} FLOPs per "
            f"step to {t1 * 1e3:.3g} ms at {f1:.3g}"
        )


def gpu_throughput(device_name: str, mfu: tuple[tuple[float, float], ...] = ASSUMED_GPU_MFU) -> Throughput:
    """A GPU by name (e.g. "H100 SXM", or torch.cuda.get_device_name()): its datasheet peak and `mfu`."""
    peak = peak_flops(device_name)
    if peak is None:
        raise ValueError(f"device: no peak known for {device_name!r}; known: see harness.flops.PEAK_FLOPS")
    basis = "datasheet bf16 peak, MFU assumed" if mfu is ASSUMED_GPU_MFU else "datasheet bf16 peak"
    return Throughput(device_name, peak, mfu, basis)


def cpu_throughput(peak: float, mfu: tuple[tuple[float, float], ...] = ASSUMED_CPU_MFU) -> Throughput:
    """One CPU core whose fp32 matmul peak was measured at `peak` FLOP/s (`harness.peak`); a sweep
    running one run per core passes the cores to `estimate_seconds` as runs_at_once."""
    basis = "fp32 matmul peak of one core, measured" + (", MFU assumed" if mfu is ASSUMED_CPU_MFU else "")
    return Throughput("cpu", peak, mfu, basis)


def throughput_from_runs(rows: Iterable[Mapping], device: str, peak: float) -> Throughput | None:
    """The MFU of finished runs (result rows, from result.json or results.csv: tokens_per_s x
    flops_per_token / peak), median per size (non-embedding params); None when no row has a
    throughput. Sizes between and beyond the measured ones are interpolated."""
    by_size: dict[float, list[float]] = {}
    for row in rows:
        rate = float(row.get("tokens_per_s") or 0)
        if row.get("status") == "done" and rate > 0:
            mfu = rate * float(row["flops_per_token"]) / peak
            by_size.setdefault(float(row["params_nonembedding"]), []).append(mfu)
    if not by_size:
        return None
    points = tuple((n, min(1.0, statistics.median(m))) for n, m in sorted(by_size.items()))
    runs = sum(len(m) for m in by_size.values())
    return Throughput(device, peak, points, f"MFU measured on {runs} finished runs")


def run_evals(spec: RunSpec) -> float:
    """Evaluations a run computes itself: train.evals, a branch's share in proportion to its own steps."""
    return spec.train.evals * (spec.steps - spec.fork_step) / spec.steps


MEASURED_MFU_FILE = "measured_mfu.json"  # under data.cache_dir: scripts/gpu_check.py writes, the sweep reads


def record_measured_mfu(
    path: Path, device: str, peak: float, points: Sequence[tuple[float, float]], measured_by: str
) -> None:
    """Write `device`'s measured peak FLOP/s and MFU per size ((non-embedding params, MFU against that
    peak) points) into the file at `path`, which holds one entry per device name."""
    entries = json.loads(path.read_text()) if path.exists() else {}
    entries[device] = {"peak_flops": peak, "mfu": sorted(points), "measured_by": measured_by}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n")
    os.replace(tmp, path)


def measured_throughput(path: Path, device: str) -> Throughput | None:
    """`device`'s Throughput as `record_measured_mfu` wrote it at `path`; None when there is none."""
    entry = (json.loads(path.read_text()) if path.exists() else {}).get(device)
    if entry is None:
        return None
    points = tuple((float(n), min(1.0, float(m))) for n, m in entry["mfu"])
    basis = f"peak and MFU measured by {entry['measured_by']}, {path}"
    return Throughput(device, float(entry["peak_flops"]), points, basis)


def run_flops(spec: RunSpec, val_tokens: int = 0) -> float:
    """FLOPs a run computes itself: its training steps (a branch only its cooldown) plus its evaluations'
    forward passes."""
    return spec.flops_spent + run_evals(spec) * eval_flops(spec, val_tokens)


# A CPU sweep's costs besides its runs' steps and evaluations, in seconds on one core whose fp32 matmul
# peak is REFERENCE_PEAK (a core measured slower, or busy, takes them longer in proportion). CPU seconds of
# each part, measured by scripts/estimate_costs.py (docs/performance.md, *The start screen's estimate*).
REFERENCE_PEAK = 1.15e11


@dataclass(frozen=True)
class FixedCosts:
    """Seconds, on a core of REFERENCE_PEAK, a sweep spends besides its runs' steps and evaluations."""

    pool: float  # starting training processes: the forkserver imports torch, transformers, the trainer
    process: float  # each training process: its data source and first model (transformers' lazy imports)
    tracker: float  # each training process that logs to W&B: W&B's local service starting
    run: float  # each run: its model, optimizer, files and (logging) W&B run, outside its steps
    fit: float  # the fit's fixed part: observations, parametric fit, report.md, plots, the W&B fit run
    resample: float  # the fit: per bootstrap resample
    draw: float  # the fit: per calibration draw (one simulated sweep of each of its five laws)


# `python scripts/estimate_costs.py --preset smoke --sweep <smoke>` (2026-12-07, a shared 2-core machine at
# load 9-10; the matmul peak by CPU time 8.6e10; an earlier run at load 9-11 read 0.7x-1.3x these): fit =
# 0.75 + 1.2 for the report and the W&B fit run.
CPU_COSTS = FixedCosts(pool=2.3, process=2.8, tracker=0.7, run=0.02, fit=2.0, resample=0.0021, draw=0.0074)


@dataclass(frozen=True)
class Overheads:
    """Seconds a sweep spends besides its runs' own time: already (before the estimate was made), before
    the first run, per run, after the last."""

    already: float = 0.0
    start: float = 0.0
    run: float = 0.0
    after: float = 0.0


@dataclass(frozen=True)
class SweepWork:
    """What a CPU sweep does besides training, for `sweep_overheads`."""

    processes: int  # training processes (1: the runs train in the sweep's own process)
    logging: bool  # runs and fit log to W&B
    resamples: int  # the fit's bootstrap resamples (fit.bootstrap); -1: no fit in this command
    draws: int  # the fit's calibration draws per law (fit.calibration_draws)


def sweep_overheads(costs: FixedCosts, work: SweepWork, *, already: float, slowdown: float) -> Overheads:
    """The sweep's Overheads from its `work`: `already` seconds spent, the fixed costs times
    `slowdown` (REFERENCE_PEAK / this core's measured peak). The training processes start side by side,
    so their start counts once."""
    start = costs.process + costs.tracker * work.logging + costs.pool * (work.processes > 1)
    after = 0.0
    if work.resamples >= 0:
        after = costs.fit + costs.resample * work.resamples + costs.draw * work.draws
    return Overheads(already, start * slowdown, costs.run * slowdown, after * slowdown)


def estimate_seconds(
    plan: Sequence[RunSpec],
    device: Throughput | StepTimes,
    *,
    val_tokens: int = 0,
    runs_at_once: int = 1,
    overheads: Overheads = Overheads(),
) -> tuple[float, str]:
    """Expected wall seconds of a sweep that trains `plan` (plan_runs' result runs; WSD main runs are
    added) on `device`, with its `overheads`, and one line saying how the figure was made. With
    runs_at_once = k > 1 each of k runs trains as fast as alone (one per core), so the runs take
    max(sum / k, the longest run)."""
    if runs_at_once < 1:
        raise ValueError(f"runs_at_once: must be >= 1, got {runs_at_once}")
    runs = training_order(plan)
    o = overheads
    times = [device.run_seconds(s, val_tokens) + o.run for s in runs]
    wall = o.already + o.start + max(sum(times) / runs_at_once, max(times, default=0.0)) + o.after
    flops = sum(run_flops(s, val_tokens) for s in runs)
    at_once = f", {runs_at_once} runs at once" if runs_at_once > 1 else ""
    fixed = o.already + o.start + o.run * len(runs) / runs_at_once + o.after
    fixed = (
        f"; {fixed:.2g} s besides training (start {o.already + o.start:.2g} s, {o.run:.2g} s per run, "
        f"fit and report {o.after:.2g} s)"
        if fixed > 0
        else ""
    )
    basis = f"{len(runs)} runs, {flops:.3g} FLOPs on {device.device} {device.describe(runs)}{at_once}{fixed}"
    return wall, basis


def device_throughput(
    device: str, peak: float, finished: Sequence[dict], measured: Path, assumed: Throughput
) -> Throughput:
    """How fast `device` trains: the MFU of a sweep's finished runs when there are any, else the peak and
    MFU the device check measured on it (the file `measured`), else `assumed`."""
    return throughput_from_runs(finished, device, peak) or measured_throughput(measured, device) or assumed
