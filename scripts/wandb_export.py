"""Pull a sweep's training runs from W&B into a results CSV, to refit without the run directories.

    python scripts/wandb_export.py --group cpu [--project scaling-harness] [--entity me] -o results.csv
    python -m harness.fit input=results.csv

One row per train run of the group, in the columns of `harness.store.RESULT_COLUMNS` (empty when a run
lacks the value). A value is read from the run's summary first (the harness writes its whole result row
there when the run finishes), then from its config (the run spec: `params.total`, `shape.width`, ...).
The loss is the summary's `val_loss`, else the last logged `val/loss`; the status is the summary's
`status`, else one derived from the W&B run state. Needs network access and a W&B login.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.store import RESULT_COLUMNS

# Where a column lives in the run spec config when it is not a top-level key there.
_CONFIG_PATHS = {
    "width": ("shape", "width"),
    "depth": ("shape", "depth"),
    "n_heads": ("shape", "n_heads"),
    "params_total": ("params", "total"),
    "params_embedding": ("params", "embedding"),
    "params_nonembedding": ("params", "nonembedding"),
}
# W&B run states -> harness statuses, for runs that died before writing their summary.
_STATES = {
    "finished": "done",
    "crashed": "failed",
    "failed": "failed",
    "killed": "failed",
    "running": "running",
}


def _as_dict(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return dict(getattr(value, "_json_dict", {}) or {})


def _unwrap(value: Any) -> Any:
    # W&B's raw config stores every value as {"value": ..., "desc": ...}; the public API mostly strips it
    if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "desc"}:
        return value["value"]
    return value


def _lookup(mapping: Any, path: Sequence[str]) -> Any:
    for key in path:
        mapping = _unwrap(mapping)
        if not isinstance(mapping, Mapping) or key not in mapping:
            return None
        mapping = mapping[key]
    return _unwrap(mapping)


def _final_loss(summary: Mapping) -> float | None:
    value = summary.get("val_loss")
    if value is None:
        value = summary.get("val/loss")
        if isinstance(value, Mapping):  # define_metric(summary="min,last") stores a dict
            value = value.get("last", value.get("min"))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def run_to_row(run: Any) -> dict[str, Any]:
    """The results-table row of one W&B run (a `wandb.apis.public.Run`, or anything with `id`, `state`,
    `config` and `summary_metrics`/`summary`)."""
    summary = _as_dict(getattr(run, "summary_metrics", None)) or _as_dict(getattr(run, "summary", None))
    config = _as_dict(getattr(run, "config", None))
    row: dict[str, Any] = {}
    for column in RESULT_COLUMNS:
        value = summary.get(column)
        if value is None or isinstance(value, Mapping):
            value = _lookup(config, _CONFIG_PATHS.get(column, (column,)))
        row[column] = None if isinstance(value, Mapping) else value
    row["run_id"] = row["run_id"] or getattr(run, "id", None)
    row["val_loss"] = _final_loss(summary)
    if not row["status"]:
        row["status"] = _STATES.get(str(getattr(run, "state", "")), "failed")
    return row


def write_rows(rows: Iterable[Mapping[str, Any]], path: Path) -> Path:
    """Write rows as CSV with RESULT_COLUMNS; None becomes an empty cell."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(RESULT_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in RESULT_COLUMNS})
    return path


def fetch_rows(entity: str, project: str, group: str) -> list[dict[str, Any]]:
    """The rows of every train run of `group`, ordered by creation."""
    import wandb

    api = wandb.Api()
    path = f"{entity}/{project}" if entity else project
    runs = api.runs(path, filters={"group": group, "jobType": "train"}, order="+created_at")
    return [run_to_row(run) for run in runs]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", required=True, help="sweep name (the W&B run group)")
    parser.add_argument("--project", default="scaling-harness")
    parser.add_argument("--entity", default="", help="W&B entity (default: your default entity)")
    parser.add_argument("-o", "--output", type=Path, default=Path("results.csv"))
    args = parser.parse_args(argv)
    try:
        rows = fetch_rows(args.entity, args.project, args.group)
    except Exception as e:  # noqa: BLE001 - one clear line instead of a GraphQL traceback
        print(
            f"error: could not read runs from W&B ({type(e).__name__}: {e}); "
            "it needs network access and a W&B login (WANDB_API_KEY)",
            file=sys.stderr,
        )
        return 2
    if not rows:
        print(f"error: no train runs in group {args.group!r} of {args.project}", file=sys.stderr)
        return 1
    write_rows(rows, args.output)
    print(f"{len(rows)} runs -> {args.output}; refit with: python -m harness.fit input={args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
