"""The claims report end to end: plan every part, say what it will cost, train what is not finished,
compare and study, then judge the claims and write the report.

Each distinct sweep directory trains once (the ladder experiments share their reference), through
`harness.sweep.run_sweep`, which skips finished runs: a second `make blob` trains nothing. Before each
sweep one line gives the blob's progress and the time left for the whole, the estimate of what remains
scaled by how the finished part's estimate compared with its actual time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import store
from harness.config import Config
from harness.progress import duration
from harness.studies.blob.claims import Claim, Results, combine, judge_claims
from harness.studies.blob.parts import Part, distinct_sweeps

BLOB_DIR = Path("runs/blob")


@dataclass(frozen=True)
class Cost:
    """A sweep's share of the blob: runs left to train and their estimated seconds."""

    cfg: Config
    runs: int
    todo: int
    seconds: float


def estimate(cfg: Config) -> Cost:
    """Runs planned, runs not yet finished and the start screen's estimate of their time."""
    from harness.sweep import plan_sweep

    planned = plan_sweep(cfg)
    eta = planned.estimate()
    return Cost(cfg, len(planned.specs), len(planned.todo), eta[0] if eta else 0.0)


def plan_text(costs: list[Cost], parts: list[Part]) -> str:
    """The blob's plan: each sweep with its runs left and time, and the total."""
    total = sum(c.seconds for c in costs)
    lines = [f"blob: {len(parts)} parts on 2 realizations, {len(costs)} sweeps; rules: docs/blob.md"]
    for c in costs:
        left = f"{c.todo} of {c.runs} runs to train" if c.todo else f"{c.runs} runs, all finished"
        lines.append(f"  {c.cfg.sweep.dir:<40} {left:<28} {duration(c.seconds) if c.todo else ''}")
    lines.append(f"  estimate   about {duration(total)} for the whole, {sum(c.todo for c in costs)} runs")
    return "\n".join(lines)


def train_all(costs: list[Cost]) -> None:
    """run_sweep for every sweep, with a line of progress and the time left for the whole before each."""
    from harness.sweep import run_sweep

    started, spent, estimated = time.perf_counter(), 0.0, 0.0
    for i, c in enumerate(costs, 1):
        left = sum(x.seconds for x in costs[i - 1 :])
        pace = spent / estimated if estimated > 0 else 1.0  # how the estimates have held so far
        print(f"\nblob [{i}/{len(costs)}] {c.cfg.sweep.dir}: {c.todo} runs to train; "
              f"about {duration(left * pace)} left for the whole", flush=True)  # fmt: skip
        t0 = time.perf_counter()
        run_sweep(c.cfg)
        if c.todo:
            spent, estimated = spent + time.perf_counter() - t0, estimated + c.seconds
    print(f"\nblob: every sweep trained and fitted in {duration(time.perf_counter() - started)}")


def compare_and_study(parts: list[Part]) -> None:
    """Each experiment's comparison (as its multirun's callback would) and the abilities study."""
    from harness.studies.abilities import study_abilities, summary_line
    from harness.studies.compare import CompareVariants
    from harness.studies.compare.experiment import print_comparison

    for part in parts:
        if part.kind == "experiment":
            callback = CompareVariants(**part.compare)
            callback.on_multirun_start(config=None)  # records rules and tuning, as its multirun does
            print_comparison(callback.dir, callback.reference, callback.reference_dir)
        elif part.kind == "abilities":
            print(summary_line(study_abilities(Path(part.configs[0].sweep.dir))))


def read_results(parts: list[Part], realization: int) -> Results:
    """One realization's finished outputs, as the claims read them."""
    fits, comparisons, abilities, paths = {}, {}, None, {}
    for part in (p for p in parts if p.realization == realization):
        data = store.read_json(part.evidence)
        paths[part.name] = str(part.evidence)
        if data is None:
            continue
        if part.kind == "sweep":
            fits[part.name] = data
        elif part.kind == "experiment":
            comparisons[part.name] = data
        else:
            abilities = data
    return Results(fits, comparisons, abilities, paths)


def judge(parts: list[Part]) -> list[Claim]:
    """Every claim on realization 1, with realization 2's verdict beside it (unstable where they differ)."""
    return combine(judge_claims(read_results(parts, 1)), judge_claims(read_results(parts, 2)))


def header() -> dict:
    """Commit and date of the report."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        "commit": commit.stdout.strip() or "unknown",
        "date": time.strftime("%Y-%m-%d"),
        "realizations": ["as each preset says (runs/blob/r1/)", "data.seed=7 (runs/blob/r2/)"],
        "scale": "the blob's (docs/blob.md)",
    }


def run_blob(parts: list[Part], *, dry_run: bool, out: Path = BLOB_DIR) -> list[Claim] | None:
    """Plan, then (unless dry_run) train, compare, study, judge and write the report into `out`, and log
    it as one W&B run (group `blob`, with the parts' logger settings) with the report's files."""
    from harness.studies.blob import report
    from harness.tracking.report_run import log_report

    costs = [estimate(cfg) for cfg in distinct_sweeps(parts)]
    print(plan_text(costs, parts), flush=True)
    if dry_run:
        print("dry run: nothing trained or written")
        return None
    train_all(costs)
    compare_and_study(parts)
    claims = judge(parts)
    head = header()
    files = report.write(out, claims, head)
    intervals = ("interval", "second_interval")
    rows = [{k: v for k, v in asdict(c).items() if k not in intervals} for c in claims]
    log_report(
        parts[0].configs[0].logger, out_dir=out, group="blob", summary=report.wandb_summary(claims),
        rows=rows, plots=[f for f in files if f.suffix == ".png"],
        files=[f for f in files if f.suffix != ".png"], config=head,
    )  # fmt: skip
    print(report.summary(claims))
    print(f"  wrote      {', '.join(str(f) for f in files)}", file=sys.stdout)
    return claims
