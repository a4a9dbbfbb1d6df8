"""A study's W&B run: one per report directory (id `<group>-report`, job_type `report`), continued by
every rerun, so W&B lists one current report run; its summary holds the report's verdicts, its history
the report's table and plots, and its artifact (`<group>-report`, type `report`) the report's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import LoggerConfig
from harness.tracking.fit_run import images_and_table, log_artifact
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
        plots = [Path(p) for p in plots if Path(p).is_file()]
        if data := images_and_table(plots, "report", rows):
            run.log(data, step=step)
        log_artifact(run, f"{group}-report", ARTIFACT_TYPE, summary, files, plots)
    except Exception as e:  # noqa: BLE001 - W&B must never fail a report
        logger._abandon(e)
        return
    logger.finish(summary=summary)
