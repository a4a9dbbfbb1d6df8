"""Results table -> fit -> fit.json, report.md, plots/*.png and a one-screen summary.

`analyse` turns result rows into observations (`observations`), runs `harness.fit.fit_sweep`, and
writes, through one renderer per output:

    <out>/fit.json      FitReport.to_dict() plus meta and warnings
    <out>/report.md     every number with its unit, interval and meaning, and the verdict (`markdown`)
    <out>/plots/loss_vs_compute.png, isoflop.png, optimal_allocation.png, residuals.png (`plots`)
`summary_text` (`terminal`) is the summary the sweep prints.

Nothing is written when the input cannot be fitted: FitError propagates before the first file.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from harness import store
from harness.config import FitConfig
from harness.fit import FitReport, fit_sweep, jsonable
from harness.report.markdown import markdown
from harness.report.plots import PLOTS, write_plots
from harness.report.table import build_observations
from harness.report.terminal import summary_text

__all__ = ["PLOTS", "analyse", "build_observations", "summary_text", "write_report"]


def analyse(
    rows: list[dict],
    cfg: FitConfig,
    out_dir: Path,
    *,
    curves: dict[str, list[dict]] | None = None,
    bayes_loss: float | None = None,
    meta: dict | None = None,
    design: str | None = None,
) -> FitReport:
    """Fit the done rows and write fit.json, report.md and plots/ into out_dir; return the report.
    `design` is the sweep's declared design (sweep.json's sweep.design), None for a foreign table."""
    obs, excluded, warnings = build_observations(rows, cfg, curves=curves, design=design)
    report = replace(fit_sweep(obs, cfg, bayes_loss=bayes_loss), excluded=tuple(excluded))
    write_report(report, Path(out_dir), meta=meta, warnings=warnings)
    return report


def write_report(
    report: FitReport,
    out_dir: Path,
    *,
    meta: dict | None = None,
    warnings: list[str] = (),
) -> None:
    """fit.json, report.md and the plots of one FitReport."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    data["warnings"] = list(warnings)
    data["meta"] = jsonable(json.loads(json.dumps(meta or {}, default=str)))
    text = json.dumps(data, indent=2, default=str, allow_nan=False) + "\n"
    store.write_atomic(out_dir / store.FIT_JSON, text)
    plots = write_plots(report, out_dir / store.PLOTS)
    text = markdown(report, warnings=warnings, meta=meta or {}, plots=plots)
    store.write_atomic(out_dir / store.REPORT_MD, text)
