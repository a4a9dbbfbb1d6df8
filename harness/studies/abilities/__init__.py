"""Smooth loss, abrupt abilities: a study of a finished sweep directory (docs/abilities.md).

Reads the sweep's results table, its tasks' description (sweep.json `evaluators`) and each run's last
task scores (metrics.jsonl), measures how sharply every task is learned along the compute frontier
(`widths`), and writes `abilities.json`, `abilities.md` and `plots/abilities_tasks.png` beside the
sweep's own fit (`report`). Run by the abilities experiment after its sweep (`AbilitiesAfterSweep`, a
Hydra callback in configs/experiment/abilities.yaml) or by hand:

    python -m harness.studies.abilities dir=runs/exp-abilities
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from harness import store
from harness.fit import jsonable
from harness.report.table import FLOP_COLUMNS
from harness.studies.abilities.report import markdown, write_plots
from harness.studies.abilities.widths import RULES, AbilityReport, Rules, analyse_abilities

ABILITIES_JSON = "abilities.json"
ABILITIES_MD = "abilities.md"


def last_task_scores(sweep_dir: Path, rows: list[dict]) -> dict[str, dict]:
    """Each finished run's task scores at its last eval, by run id (runs without them left out)."""
    out = {}
    for row in rows:
        evals = store.read_metrics(store.run_dir(sweep_dir, store.row_dirname(row)))
        if evals and "tasks" in evals[-1].get("scores", {}):
            out[row["run_id"]] = evals[-1]["scores"]["tasks"]
    return out


def study_abilities(sweep_dir: Path, rules: Rules = RULES) -> AbilityReport | None:
    """Analyse the sweep's task scores by `rules` (fixed before the runs) and write the study's files;
    None (nothing written) when the sweep's source poses no tasks or fewer than 3 frontier runs have
    scores."""
    info = store.read_json(sweep_dir / store.SWEEP_JSON) or {}
    meta = info.get("evaluators", {}).get("tasks")
    if meta is None or not (sweep_dir / store.RESULTS_CSV).exists():
        return None
    config = info.get("config", {})
    c_col = FLOP_COLUMNS[config.get("fit", {}).get("flops", "full")]
    rows = store.read_results_table(sweep_dir)
    rep = analyse_abilities(rows, meta, last_task_scores(sweep_dir, rows), c_col=c_col, rules=rules)
    if rep is None:
        return None
    plots = write_plots(rep, sweep_dir / store.PLOTS, c_label=f"C (FLOPs, {c_col})")
    store.write_atomic(sweep_dir / ABILITIES_JSON, json.dumps(jsonable(rep.to_dict()), indent=2) + "\n")
    store.write_atomic(sweep_dir / ABILITIES_MD, markdown(rep, plots))
    return rep


def summary_line(rep: AbilityReport | None) -> str:
    """One line for the terminal: how many abilities are abrupt, and where the study's files are."""
    if rep is None:
        return "abilities: no task scores on 3 or more frontier runs; nothing to study"
    names = sorted({a.name for a in rep.abrupt})
    return (
        f"abilities: {len(names)} abrupt ({', '.join(names) or 'none'}) of {len({a.name for a in rep.rows})} "
        f"along {rep.runs} frontier runs; {ABILITIES_MD}"
    )


class AbilitiesAfterSweep(Callback):
    """Hydra callback (configs/experiment/abilities.yaml): once the sweep has returned, study it."""

    def on_run_end(self, config: Any, **kwargs: Any) -> None:
        if config.sweep.dry_run or config.sweep.stage == "train":
            return
        print(summary_line(study_abilities(Path(config.sweep.dir))))
