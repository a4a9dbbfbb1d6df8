"""What a sweep prints around its training: the start screen (plan, paths, W&B mode, estimated time)
with its sanity bound, the sweep's W&B identity, and the closing lines (what was written, how to upload
offline W&B runs, which runs are still missing). The fit's own summary is `harness.report.terminal`.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness import store
from harness.config import Config, ConfigError
from harness.data import TokenSource
from harness.estimate import (
    ASSUMED_GPU_MFU,
    CPU_COSTS,
    MEASURED_MFU_FILE,
    REFERENCE_PEAK,
    StepTimes,
    SweepWork,
    Throughput,
    cpu_throughput,
    device_throughput,
    estimate_seconds,
    eval_flops,
    step_flops,
    sweep_overheads,
)
from harness.flops import peak_flops
from harness.plan import RunSpec
from harness.report.terminal import count, line, outputs_text, start_text
from harness.tracking import Mode, fell_back, group_name, sync_command, wandb_root

if TYPE_CHECKING:
    from harness.device import Device

MEASURED_RUNS = 4  # runs of a cpu plan whose steps are timed before it starts, spread over its step FLOPs
TIMED_STEPS = 8  # steps timed per run, after 2 that warm it up
MEASURE_LIMIT_S = 20.0  # a plan whose largest steps would take longer to time (at the matmul peak; the cpu
# preset's take 1.7 s) is estimated from the assumed MFU table instead (e.g. the gpu preset on a cpu: 1.1e4 s)


def this_gpu(finished: Sequence[dict], measured: Path) -> Throughput:
    """How fast this GPU trains (harness.estimate): the MFU of the sweep's finished runs when there are
    any, else the peak and MFU the device check measured on this GPU (the file `measured`), else the
    assumed MFU table, against the datasheet peak (measured for a GPU missing from it)."""
    import torch

    from harness.peak import matmul_peak_flops

    name = torch.cuda.get_device_name()
    peak = peak_flops(name) or matmul_peak_flops("cuda", dtype=torch.bfloat16, sizes=(8192,))
    assumed = Throughput(name, peak, ASSUMED_GPU_MFU, "bf16 peak, MFU assumed")
    return device_throughput(name, peak, finished, measured, assumed)


def measure_steps(todo: Sequence[RunSpec], source: TokenSource, dev: Device, val_tokens: int) -> StepTimes:
    """Seconds per step and per evaluation on this machine now, with this process's torch threads: the
    training loop itself (harness.train.train_run, logging nothing, in a temporary directory) on up to
    MEASURED_RUNS of the runs, spread over their FLOPs per step; 2 + TIMED_STEPS steps against 2 (the
    difference leaves out the first steps' warm-up), and at the smallest and largest 2 steps with an
    evaluation against 2 without."""
    from harness.tracking.wandb_run import NullLogger
    from harness.train import train_run

    shapes = {(step_flops(s), s.shape, s.batch_size): s for s in todo}
    ordered = [shapes[k] for k in sorted(shapes, key=lambda k: k[0])]
    picks = sorted({round(i * (len(ordered) - 1) / max(MEASURED_RUNS - 1, 1)) for i in range(MEASURED_RUNS)})
    with tempfile.TemporaryDirectory(prefix="harness-steps-") as tmp:

        def loop_seconds(spec: RunSpec, steps: int, evals: int) -> float:
            train = dataclasses.replace(spec.train, evals=evals, checkpoint_every=0)
            short = dataclasses.replace(spec, steps=steps, parent=None, fork_step=0, forks=(), train=train)
            path = Path(tmp, f"{len(os.listdir(tmp))}")
            return train_run(short, source, path, NullLogger(), dev)["wall_s"]

        steps, evals = [], []
        for i in picks:
            spec = ordered[i]
            base = loop_seconds(spec, 2, 0)
            steps.append(
                (step_flops(spec), max(loop_seconds(spec, 2 + TIMED_STEPS, 0) - base, 1e-6) / TIMED_STEPS)
            )
            if i in (picks[0], picks[-1]):
                evals.append((eval_flops(spec, val_tokens), max(loop_seconds(spec, 2, 1) - base, 1e-6)))
    return StepTimes("cpu", tuple(steps), tuple(sorted(set(evals))))


def process_age() -> float:
    """Wall seconds since this process started (Linux's /proc); 0 where that cannot be read."""
    try:
        stat = Path("/proc/self/stat").read_text()
        started = int(stat.rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, float(Path("/proc/uptime").read_text().split()[0]) - started)
    except (OSError, ValueError, IndexError):
        return 0.0


def estimate(
    cfg: Config, todo: Sequence[RunSpec], done: Sequence[dict], source: TokenSource, dev: Device,
    *, runs_at_once: int, logging: bool, started: float | None = None,
) -> tuple[float, str]:  # fmt: skip
    """The start screen's estimate: the runs still to train (on a cpu their steps measured now, unless
    that would take over MEASURE_LIMIT_S; on a GPU from its MFU) and the sweep's fixed costs
    (harness.estimate.CPU_COSTS, host-CPU work: on a cpu scaled by this core's measured matmul peak)
    from the start (`started`, a time.monotonic(); None: this process's, a command's) to the fit's end."""
    from harness.peak import matmul_peak_flops

    val_tokens = cfg.data.val_tokens
    slowdown = 1.0
    if dev.type == "cpu":
        peak = matmul_peak_flops()
        slowdown = REFERENCE_PEAK / peak
        cost = MEASURED_RUNS * (TIMED_STEPS + 4) * max(step_flops(s) for s in todo) / peak
        device = (
            measure_steps(todo, source, dev, val_tokens) if cost <= MEASURE_LIMIT_S else cpu_throughput(peak)
        )
    else:
        device = this_gpu(done, Path(cfg.data.cache_dir) / MEASURED_MFU_FILE)
    work = SweepWork(
        processes=min(len(todo), runs_at_once),
        logging=logging,
        resamples=cfg.fit.bootstrap if cfg.sweep.stage == "all" else -1,
        draws=cfg.fit.calibration_draws,
    )
    already = process_age() if started is None else time.monotonic() - started  # the steps timed included
    overheads = sweep_overheads(CPU_COSTS, work, already=already, slowdown=slowdown)
    return estimate_seconds(
        todo, device, val_tokens=val_tokens, runs_at_once=runs_at_once, overheads=overheads
    )


def passes(specs: Sequence[RunSpec], train_tokens: int | None, max_epochs: float) -> tuple[str, str]:
    """How often the runs pass over a finite source's training tokens (the start screen's line) and,
    when some would pass more than max_epochs times (0: no bound), the refusal; ('', '') for a source
    without a bound (synthetic data)."""
    if not train_tokens or not specs:
        return "", ""
    longest = max(specs, key=lambda s: s.tokens)
    most = longest.tokens / train_tokens
    text = (
        f"{count(train_tokens)} training tokens; the longest run ({longest.name}) passes over them "
        f"{most:.3g} times"
    )
    over = [s for s in specs if s.tokens / train_tokens > max_epochs] if max_epochs else []
    if not over:
        return text, ""
    refusal = (
        f"sweep.max_epochs: {len(over)} of {len(specs)} runs would pass over the data's "
        f"{count(train_tokens)} training tokens more than {max_epochs:g} times (up to {most:.3g}: "
        f"{longest.name} at budget {longest.budget:.3g}); use more text, lower the top budgets "
        "(sweep.flops), or raise sweep.max_epochs"
    )
    return text, refusal


def start(
    cfg: Config,
    specs: Sequence[RunSpec],
    mine: Sequence[RunSpec],
    sweep_dir: Path,
    device: str,
    precision: str,
    mode: Mode,
    done: dict[str, dict],
    eta: tuple[float, str] | None,
    train_tokens: int | None = None,
) -> None:
    """Print the start screen; refuse a plan estimated beyond sweep.max_hours, or whose runs would pass
    over the source's `train_tokens` more than sweep.max_epochs times (a dry run only says so).
    `done`: the finished runs' results by run id (store.finished_results); `eta`: the estimate of what
    is left (seconds, basis; `estimate`), None when nothing is."""
    finished = set(done)
    todo = [s for s in mine if s.run_id not in finished]
    data, epochs_refusal = passes(specs, train_tokens, cfg.sweep.max_epochs)
    wandb = f"{mode.mode}: {mode.why}"
    if mode.mode != "disabled":
        wandb += f"\nfiles in {wandb_root(cfg.logger, sweep_dir)}"
    title = f"{cfg.sweep.name}: {cfg.model.family} on {cfg.data.source} data, {device} {precision}" + (
        ", fitting only" if cfg.sweep.stage == "fit" else ""
    )
    print(
        start_text(
            title=title,
            design=cfg.sweep.design,
            specs=specs,
            todo=len(todo),
            finished=len(finished),
            eta=eta,
            sweep_dir=sweep_dir,
            wandb=wandb,
            shard=(cfg.sweep.shard, cfg.sweep.num_shards),
            data=data,
        ),
        flush=True,
    )
    if cfg.sweep.sized_for == "gpu" and device == "cpu":
        print(no_cuda_line(), flush=True)
    hours = eta[0] / 3600 if eta else 0.0
    refusal = epochs_refusal
    if hours > cfg.sweep.max_hours:
        refusal = (
            f"sweep.max_hours: the plan is estimated at {hours:.3g} hours on {device}, more than "
            f"{cfg.sweep.max_hours:g}; train fewer or smaller runs, or pass "
            f"sweep.max_hours={hours * 1.1:.2g} to run it anyway"
        )
    if cfg.sweep.dry_run:
        print(f"dry run: nothing trained or written{'; would be refused: ' + refusal if refusal else ''}")
    elif refusal:
        raise ConfigError(refusal)


def no_cuda_line() -> str:
    """The start screen's line for a gpu preset about to train on the cpu: why there is no CUDA."""
    from harness.device import cuda_missing

    why = cuda_missing() or "train.device=cpu was asked for"
    return line(
        "CUDA",
        f"MISSING: {why}; this preset is sized for a GPU and trains on the cpu here "
        "(train.device=cuda makes a missing GPU an error)",
    )


class WandbIdentity:
    """The sweep's W&B identity: group `<name>-<instance>` and tags (preset, design, family, device)."""

    def __init__(self, cfg: Config, sweep_dir: Path, info: dict, device: str) -> None:
        self.group = group_name(cfg.sweep.name, info.get("instance", ""))
        self.root = wandb_root(cfg.logger, sweep_dir)
        self.project = cfg.logger.project
        preset = info.get("preset") or cfg.sweep.name
        self.tags = (
            f"preset:{preset}",
            f"design:{cfg.sweep.design}",
            f"family:{cfg.model.family}",
            f"device:{device}",
        )


def outputs(sweep_dir: Path, rows: list[dict], wb: WandbIdentity, mode: Mode, fitted: bool) -> str:
    """Where the results went and how to upload offline W&B runs."""
    written = [store.RESULTS_CSV]
    if fitted:
        n_plots = len(list((sweep_dir / store.PLOTS).glob("*.png")))
        written += [store.FIT_JSON, store.REPORT_MD, f"{store.PLOTS}/ ({n_plots} PNGs)"]
    offline = mode.mode == "offline" or fell_back()
    if mode.mode == "disabled":
        wandb = ""
    elif offline:
        wandb = f"offline runs of group {wb.group}; upload them with:\n$ {sync_command(wb.root)}"
    else:
        wandb = f"online, project {wb.project}, group {wb.group}"
    return outputs_text(sweep_dir=sweep_dir, written=written, wandb=wandb)


def next_step(preset: str) -> str:
    """What to run for a verdict when this sweep's design cannot give one: the default sweep, whose
    calibration can (docs/fit.md), from any other preset; from the default (or an unknown) one, how to
    make a design that can."""
    if preset in ("", "cpu", "gpu"):
        return (
            "for a verdict, a design whose calibration can tell: more budgets, or replicate seeds to measure "
            "the noise (docs/fit.md, The verdict and its calibration)"
        )
    return (
        "for a verdict, run the default sweep, whose design can give one: python -m harness.sweep "
        "(with sweep.dry_run=true it shows its plan and time and stops)"
    )


def missing(sweep_dir: Path, rows: list[dict]) -> str:
    """'PARTIAL ...' when planned runs have no result: how many, and whether another process is still
    training them (its end refits the sweep) or they wait for a rerun; '' when every run finished."""
    pending = [r for r in rows if r.get("status") == "pending"]
    busy = sum(store.is_training(store.run_dir(sweep_dir, store.row_dirname(r))) for r in pending)
    parts = [f"{len(rows) - len(pending)} of {len(rows)} runs finished"] if pending else []
    if busy:
        parts.append(f"{busy} still training in another process, which refits the sweep when it ends")
    if len(pending) > busy:
        parts.append(f"{len(pending) - busy} not trained yet: rerun the same command to train them")
    return line("PARTIAL", "; ".join(parts)) if parts else ""
