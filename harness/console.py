"""What a sweep prints around its training: the start screen (plan, paths, W&B mode, estimated time)
with its sanity bound, the sweep's W&B identity, and the closing lines (what was written, how to upload
offline W&B runs, which runs are still missing). The fit's own summary is `harness.report.terminal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness import store
from harness.config import Config, ConfigError
from harness.estimate import (
    ASSUMED_GPU_MFU,
    Throughput,
    cpu_throughput,
    estimate_seconds,
    throughput_from_runs,
)
from harness.flops import peak_flops
from harness.plan import RunSpec
from harness.report.terminal import count, line, outputs_text, start_text
from harness.tracking import Mode, fell_back, group_name, sync_command, wandb_root


def throughput(device: str, finished: Sequence[dict]) -> Throughput:
    """How fast this machine trains (harness.estimate): the MFU of the sweep's finished runs when there
    are any, else the assumed MFU table, against the GPU's datasheet peak or a measured matmul peak
    (a CPU, with this process's torch threads; a GPU missing from the peak table)."""
    import torch

    from harness.peak import matmul_peak_flops

    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = peak_flops(name) if device == "cuda" else None
    if peak is None:
        peak = (
            matmul_peak_flops("cuda", dtype=torch.bfloat16, sizes=(8192,))
            if device == "cuda"
            else matmul_peak_flops()
        )
    measured = throughput_from_runs(finished, name, peak)
    if measured is not None:
        return measured
    if device == "cuda":
        return Throughput(name, peak, ASSUMED_GPU_MFU, "bf16 peak, MFU assumed")
    return cpu_throughput(peak)


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
    runs_at_once: int = 1,
    train_tokens: int | None = None,
) -> None:
    """Print the start screen; refuse a plan estimated beyond sweep.max_hours, or whose runs would pass
    over the source's `train_tokens` more than sweep.max_epochs times (a dry run only says so).
    `runs_at_once`: runs training side by side, each as fast as alone (harness.execute: one per core)."""
    done = [r for s in specs if (r := store.read_result(store.run_dir(sweep_dir, s.dirname))) is not None]
    finished = {r["run_id"] for r in done}
    todo = [s for s in mine if s.run_id not in finished]
    eta = None
    if todo:
        eta = estimate_seconds(
            todo, throughput(device, done), val_tokens=cfg.data.val_tokens, runs_at_once=runs_at_once
        )
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
