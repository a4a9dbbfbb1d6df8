"""A study's W&B run: one per report directory (id `<group>-report`, job_type `report`), continued by
every rerun, so W&B lists one current report run; its summary holds the report's verdicts, its history
the report's table and plots, and its artifact (`<group>-report`, type `report`) the report's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import LoggerConfig
from harness.tracking.fit_run import _plain
from harness.tracking.wandb_run import WandbLogger, _init_run, attempts, wandb_root, wandb_run_id

ARTIFACT_TYPE = "report"


def log_report(
    cfg: LoggerConfig,
    *,
    out_dir: Path,
    group: str,
    summary: dict[str, Any],
    rows: list[dict],
    plots: list[Path] = (),
    files: list[Path] = (),
    config: dict | None = None,
) -> None:
    """Log a report written to `out_dir`: `summary` as the run's summary, `rows` as the table `report`
    and `plots` as images (one history step per rerun), `files` and the plots as a new version of the
    artifact `<group>-report`. Never raises (W&B off or failing: nothing logged, one warning)."""
    step = 1 + attempts(wandb_root(cfg, out_dir), wandb_run_id(group, "report"))
    run = _init_run(
        cfg, sweep_dir=out_dir, group=group, run_id="report", name=f"{group}-report", job_type="report",
        config=config or {},
    )  # fmt: skip
    if run is None:
        return
    logger = WandbLogger(run)
    try:
        import wandb

        plots = [Path(p) for p in plots if Path(p).is_file()]
        data: dict[str, Any] = {f"plots/{p.stem}": wandb.Image(str(p), caption=p.stem) for p in plots}
        columns = list(dict.fromkeys(k for row in rows for k in row))
        if columns:
            table = [[_plain(r.get(c)) for c in columns] for r in rows]
            data["report"] = wandb.Table(columns=columns, data=table)
        if data:
            run.log(data, step=step)
        files = [Path(f) for f in files if Path(f).is_file()]
        if files or plots:
            art = wandb.Artifact(f"{group}-report", type=ARTIFACT_TYPE, metadata=summary)
            for path in files:
                art.add_file(str(path), name=path.name)
            for path in plots:
                art.add_file(str(path), name=f"plots/{path.name}")
            run.log_artifact(art)
    except Exception as e:  # noqa: BLE001 - W&B must never fail a report
        logger._abandon(e)
        return
    logger.finish(summary=summary)
