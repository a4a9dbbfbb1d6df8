"""Results table -> fit -> fit.json, report.md, plots/*.png and a one-screen summary.

`analyse` turns result rows into observations (`observations`), runs `harness.fit.fit_sweep`, and
writes, through one renderer per output:

    <out>/fit.json      FitReport.to_dict() plus meta and warnings
    <out>/report.md     every number with its unit, interval and meaning, and the verdict (`markdown`)
    <out>/plots/loss_vs_compute.png, isoflop.png, optimal_allocation.png, residuals.png (`plots`)
    (and, given the runs' ability scores, an abilities section and plot: harness.report.abilities)
`summary_text` (`terminal`) is the summary the sweep prints.

Nothing is written when the input cannot be fitted: FitError propagates before the first file.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from harness import store
from harness.config import AbilitiesConfig, FitConfig
from harness.fit import FitReport, fit_sweep, jsonable
from harness.report import abilities as ab
from harness.report.markdown import markdown
from harness.report.observations import FLOP_COLUMNS, build_observations
from harness.report.plots import PLOTS, write_plots
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
    abilities: dict[str, dict] | None = None,
    design: str | None = None,
) -> FitReport:
    """Fit the done rows and write fit.json, report.md and plots/ into out_dir; return the report.

    `abilities` maps run ids to their abilities.json (harness.scoring) for the abilities section,
    judged by the rules in meta's config (the sweep's `abilities` group; defaults without one);
    `design` is the sweep's declared design (sweep.json's sweep.design), None for a foreign table.
    """
    obs, excluded, warnings = build_observations(rows, cfg, curves=curves, design=design)
    report = replace(fit_sweep(obs, cfg, bayes_loss=bayes_loss), excluded=tuple(excluded))
    rules = AbilitiesConfig(**(meta or {}).get("config", {}).get("abilities", {}))
    c_col = FLOP_COLUMNS[obs.flops]
    ability_report = ab.analyse_abilities(rows, abilities, c_col=c_col, rules=rules) if abilities else None
    write_report(report, Path(out_dir), meta=meta, warnings=warnings, abilities=ability_report)
    return report


def write_report(
    report: FitReport,
    out_dir: Path,
    *,
    meta: dict | None = None,
    warnings: list[str] = (),
    abilities: ab.AbilityReport | None = None,
) -> None:
    """fit.json, report.md and the plots of one FitReport (and of the abilities, when given)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    data["warnings"] = list(warnings)
    data["meta"] = jsonable(json.loads(json.dumps(meta or {}, default=str)))
    if abilities is not None:
        data["abilities"] = jsonable(abilities.to_dict())
    text = json.dumps(data, indent=2, default=str, allow_nan=False) + "\n"
    store.write_atomic(out_dir / store.FIT_JSON, text)
    plots = write_plots(report, out_dir / store.PLOTS)
    text = markdown(report, warnings=warnings, meta=meta or {}, plots=plots)
    if abilities is not None:
        c_label = f"C (FLOPs, {report.obs.flops} count)"
        ability_plots = ab.write_plots(abilities, out_dir / store.PLOTS, c_label=c_label)
        text += "\n" + ab.markdown(abilities, ability_plots)
    store.write_atomic(out_dir / store.REPORT_MD, text)
