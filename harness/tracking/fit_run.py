"""The fit's W&B run: the headline numbers in its summary, the sweep's result files as an artifact.

One fit run per sweep instance (id `<group>-fit`): every fit of the sweep (a rerun, other fit.*
settings) continues it, so its summary and config are always the current fit's and W&B lists one fit
run per sweep, never a pile of them under one name. Its history holds one step per fit (the plots, the
results table, the chart) and its artifact one version per fit.

The summary holds what a runs table should show at a glance (`headline`: the frontier law with its
intervals, the per-decade cut, the hold-out errors, the verdict); everything else stays in fit.json,
which travels with results.csv, report.md and the plots in the artifact `<group>-results` (type
`sweep-results`). Plots are also logged as images, the results as a table, and loss against compute
as a log-log scatter, so the workspace can chart them. The config holds the fit's conventions and
thresholds (the FitConfig).
"""

from __future__ import annotations

import math
import numbers
import re
from pathlib import Path
from typing import Any

from harness.config import LoggerConfig
from harness.tracking.wandb_run import WandbLogger, _init_run, attempts, wandb_root, wandb_run_id

ARTIFACT_TYPE = "sweep-results"
_INTERVALS = ("alpha", "E", "C0", "per_decade_cut")
# Every key `headline` may write: a fit without one of them sets it to None in the summary, so a value
# of an earlier fit of the same run does not stay behind as if current.
HEADLINE_KEYS = (
    *(f"fit/{k}{end}" for k in _INTERVALS for end in ("", "_lo", "_hi")),
    *(f"fit/{k}" for k in ("r2", "holdout_error", "holdout_error_parametric", "n_runs", "smooth", "verdict")),
)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _number(value: Any) -> float | None:
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    return float(value)


def _positive(value: Any) -> bool:
    x = _number(value)
    return x is not None and x > 0


def headline(fit: dict) -> dict[str, Any]:
    """The fit's few numbers a runs table shows (fit.json's structure; absent sections are left out):
    `fit/alpha`, `fit/E`, `fit/C0`, `fit/r2` of the frontier with `_lo`/`_hi` interval bounds,
    `fit/per_decade_cut`, `fit/holdout_error` (frontier, max) and `fit/holdout_error_parametric`,
    `fit/smooth` and `fit/verdict` (yes, no or untested), `fit/n_runs`."""
    out: dict[str, Any] = {}

    def put(key: str, value: Any, ci: Any = None) -> None:
        x = _number(value)
        if x is None:
            return
        out[f"fit/{key}"] = x
        if isinstance(ci, list | tuple) and len(ci) == 2 and all(_number(v) is not None for v in ci):
            out[f"fit/{key}_lo"], out[f"fit/{key}_hi"] = float(ci[0]), float(ci[1])

    front = fit.get("frontier") or {}
    cis = front.get("ci") or {}
    for key in ("alpha", "E", "C0"):
        put(key, front.get(key), cis.get(key))
    put("r2", front.get("r2"))
    decade = front.get("per_decade") or fit.get("per_decade") or {}
    put("per_decade_cut", decade.get("cut"), (decade.get("ci") or {}).get("cut"))
    hold = fit.get("holdout") or {}
    put("holdout_error", hold.get("max_rel_error"))
    put("holdout_error_parametric", (hold.get("parametric") or {}).get("max_rel_error"))
    put("n_runs", fit.get("n_runs"))
    verdict = fit.get("verdict") or {}
    if "smooth" in verdict:
        out["fit/smooth"] = bool(verdict["smooth"])
        out["fit/verdict"] = verdict.get("outcome") or ("yes" if verdict["smooth"] else "no")
    return out


def images_and_table(plots: list[Path], table: str, rows: list[dict]) -> dict[str, Any]:
    """One history step's data: each plot as the image `plots/<stem>`, the rows as the table `table`
    (the union of their keys as columns)."""
    import wandb

    data: dict[str, Any] = {f"plots/{p.stem}": wandb.Image(str(p), caption=p.stem) for p in plots}
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if columns:
        data[table] = wandb.Table(columns=columns, data=[[_plain(r.get(c)) for c in columns] for r in rows])
    return data


def log_artifact(
    run: Any, name: str, kind: str, metadata: dict, files: list[Path], plots: list[Path]
) -> None:
    """A new version of the artifact `name` holding the existing `files` and the plots (under plots/)."""
    import wandb

    files = [Path(f) for f in files if Path(f).is_file()]
    if files or plots:
        art = wandb.Artifact(name, type=kind, metadata=metadata)
        for path in files:
            art.add_file(str(path), name=path.name)
        for path in plots:
            art.add_file(str(path), name=f"plots/{path.name}")
        run.log_artifact(art)


def artifact_name(group: str) -> str:
    """`<group>-results` in the characters W&B allows in an artifact name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{group}-results")


def log_fit(
    cfg: LoggerConfig,
    *,
    sweep_dir: Path,
    group: str,
    fit: dict,
    settings: dict,
    plots: list[Path],
    rows: list[dict],
    files: list[Path] = (),
    tags: tuple[str, ...] = (),
    compute_key: str = "flops",
    loss_key: str = "val_loss",
) -> None:
    """Log the scaling-law fit to the sweep's fit run (job_type 'fit', id `<group>-fit`, continued by
    every later fit): `headline(fit)` as its summary (HEADLINE_KEYS it lacks as None), `settings` (the
    FitConfig as a dict) as its config `fit`, and as the history step of this fit: plots as
    `plots/<stem>` images, the rows as the table `results`, loss against compute in log10-log10
    coordinates as `fit/loss_vs_compute` (W&B's scatter has no log axes); `files` (plus the plots) as a
    new version of the artifact `artifact_name(group)`. Never raises."""
    # this fit's step: one past the fits started here before, so its images follow theirs
    step = 1 + attempts(wandb_root(cfg, sweep_dir), wandb_run_id(group, "fit"))
    run = _init_run(
        cfg,
        sweep_dir=sweep_dir,
        group=group,
        run_id="fit",
        name=f"{group}-fit",
        job_type="fit",
        config={"sweep": group, "fit": settings},
        tags=tags,
    )
    if run is None:
        return
    logger = WandbLogger(run)
    try:
        import wandb

        plots = [Path(p) for p in plots if Path(p).is_file()]
        data = images_and_table(plots, "results", rows)
        x, y = compute_key, loss_key
        points = [(r, float(r[x]), float(r[y])) for r in rows if _positive(r.get(x)) and _positive(r.get(y))]
        if points:
            chart = wandb.Table(
                columns=["run_id", x, y, f"log10_{x}", f"log10_{y}"],
                data=[[str(r.get("run_id", "")), c, v, math.log10(c), math.log10(v)] for r, c, v in points],
            )
            title = f"log10 {y} vs log10 {x}"
            data["fit/loss_vs_compute"] = wandb.plot.scatter(chart, f"log10_{x}", f"log10_{y}", title=title)
        if data:
            run.log(data, step=step)
        log_artifact(run, artifact_name(group), ARTIFACT_TYPE, headline(fit), files, plots)
    except Exception as e:  # noqa: BLE001
        logger._abandon(e)
        return
    logger.finish(summary={**dict.fromkeys(HEADLINE_KEYS), **headline(fit)})
