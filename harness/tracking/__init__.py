"""Experiment tracking: the W&B writer (`wandb_run`, the only module that logs to wandb) and the
offline-run reader (`offline`, for tests and offline inspection), apart."""

from harness.tracking.wandb_run import RunLogger, log_fit, open_run

__all__ = ["RunLogger", "log_fit", "open_run"]
