"""Experiment tracking: whether W&B logs online or offline and why (`mode`), the W&B writer of the
training runs (`wandb_run`, the only module that starts W&B runs) and of the fit's run and artifact
(`fit_run`), and the offline-run reader (`offline`, for tests and offline inspection)."""

from harness.tracking.fit_run import log_fit
from harness.tracking.mode import Mode, resolve_mode, sync_command
from harness.tracking.wandb_run import RunLogger, fell_back, group_name, open_run, wandb_root

__all__ = [
    "Mode",
    "RunLogger",
    "fell_back",
    "group_name",
    "log_fit",
    "open_run",
    "resolve_mode",
    "sync_command",
    "wandb_root",
]
