"""The result tables of docs/experiments.md, from the experiments' own files.

    .venv/bin/python scripts/experiment_tables.py [runs]

Reads each ingredient experiment's comparison.json and experiment.json (runs/exp-<name>/), its variants'
results.csv (core time: the sum of the runs' wall_s), and prints, with the commit and date they were
made from: the tuning of every scanned arm, one row per compared variant (its tuning, verdict, offset,
slope, top gap with 95% intervals, lack of fit, the noise of a difference, the rule's right-verdict
rates, core time) and each variant's mean d per budget. tests/test_experiment_tables.py renders the same
tables from the pinned results in tests/data/experiments/ and fails when the doc's tables differ.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from harness.studies.compare.report import rule_text  # noqa: E402

EXPERIMENTS = ("architecture", "conditioning", "data_quality", "data_quantity", "objective", "proportion")
TRUTHS = ("no effect", "offset", "slope", "damage at the top")  # harness.studies.compare.calibrate


def _d(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.3f}"


def _est(e: dict) -> str:
    lo, hi = e["ci"]
    return f"{_d(e['value'])} [{_d(lo)}, {_d(hi)}]"


def _p(p: float | None, spec: str = ".2g") -> str:
    return "n/a" if p is None or not math.isfinite(p) else format(p, spec)


def core_seconds(sweep_dir: Path) -> float:
    """Sum of the finished runs' wall_s in the sweep's results.csv (seconds of one core: one thread each)."""
    with (sweep_dir / "results.csv").open(newline="") as f:
        return sum(float(r["wall_s"]) for r in csv.DictReader(f) if r.get("wall_s"))


def tuning_cell(t: dict, reference: dict) -> str:
    """How an arm was tuned, in a few words: the procedure, whose scan (its own or the reference's)."""
    if not t:
        return "not recorded"
    if t["procedure"] == "none":
        return "none (every arm untuned)"
    whose = "the reference's" if t.get("scanned") == reference.get("scanned") else "own"
    return f"{t['procedure']}, {whose}"


def variant_rows(exp_dir: Path) -> list[str]:
    """One Markdown row per compared variant of the experiment in exp_dir, then its reference's (tuning
    and core time; a reference_dir elsewhere is looked for beside exp_dir: the ladder's is shared)."""
    c = json.loads((exp_dir / "comparison.json").read_text())
    reference_dir = json.loads((exp_dir / "experiment.json").read_text()).get("reference_dir")
    tuning, name = c.get("tuning", {}), exp_dir.name.removeprefix("exp-")
    ref_tuning = tuning.get(c["reference"], {})
    rows = []
    for v in c["variants"]:
        sentence = f"{v['verdict']} ({v['direction']})" if v["direction"] else v["verdict"]
        right = " / ".join(f"{v['calibration'][k]:.0%}" for k in TRUTHS) if v["calibration"] else "n/a"
        core = core_seconds(exp_dir / v["variant"])
        rows.append(
            f"| {name} | {v['variant']} | {tuning_cell(tuning.get(v['variant'], {}), ref_tuning)} "
            f"| {sentence} | {_est(v['offset'])} | {_est(v['slope'])} "
            f"| {_est(v['top'])} ({v['budgets']['C'][-1]:.2g}) | {_p(v['lack_of_fit_p'])} "
            f"| {_p(v['sigma_run'], '.3f')}, {_p(v['sigma_seed'], '.3f')} | {right} | {core:.0f} |"
        )
    ref_dir = exp_dir.parent / Path(reference_dir).name if reference_dir else exp_dir / c["reference"]
    shared = " (shared)" if reference_dir else ""
    rows.append(
        f"| {name} | {c['reference']}: the reference{shared} | {tuning_cell(ref_tuning, ref_tuning)} "
        f"| | | | | | | | {core_seconds(ref_dir):.0f} |"
    )
    return rows


def experiments_table(root: Path, names: tuple[str, ...] = EXPERIMENTS) -> str:
    """The experiments' table and each variant's mean d per budget, for every experiment under root."""
    lines = [
        "| experiment | variant | tuning | verdict | offset | slope | top (FLOPs) | lack of fit p "
        "| noise run, seed | right verdicts | core s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    means = []
    for name in names:
        exp_dir = root / f"exp-{name}"
        if not (exp_dir / "comparison.json").exists():
            continue
        lines += variant_rows(exp_dir)
        for v in json.loads((exp_dir / "comparison.json").read_text())["variants"]:
            b = v["budgets"]
            pairs = ", ".join(f"{C:.2g} {_d(d)}" for C, d in zip(b["C"], b["mean"], strict=True))
            means.append(f"- {v['variant']} (FLOPs mean d): {pairs}")
    return "\n".join([*lines, "", *means])


def scanned_arms(root: Path, names: tuple[str, ...] = EXPERIMENTS) -> dict[str, dict]:
    """Every scanned arm's tuning record (experiment.json's), once, by the recipe it scanned."""
    scans = {}
    for name in names:
        path = root / f"exp-{name}" / "experiment.json"
        for t in (json.loads(path.read_text()).get("tuning", {}) if path.exists() else {}).values():
            if t.get("procedure") == "lr_scan":
                scans[t["scanned"]] = t
    return scans


def tuning_table(scans: dict[str, dict]) -> str:
    """One row per scanned arm: the LRs scanned, its optimum at each scanned width, the rule through them."""
    lines = [
        "| arm scanned | peak LRs (constant) | optimum (peak LR) per width | rule |",
        "| --- | --- | --- | --- |",
    ]
    for scanned, t in sorted(scans.items()):
        g = t["grid"]
        optima = ", ".join(f"{w}: {o:.3g}" for w, o in zip(g["widths"], t["optimum"], strict=True))
        lines.append(
            f"| {scanned} | {', '.join(f'{x:g}' for x in g['lr'])} | {optima} | {rule_text(t['rule'])} |"
        )
    return "\n".join(lines)


def provenance() -> str:
    """The commit the tables were made at (dirty when the tree has changes) and today's date."""
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout
    return f"made by scripts/experiment_tables.py at commit {commit.strip() or 'unknown'}, {date.today()}"


def main(root: Path) -> None:
    print(f"<!-- {provenance()} -->\n")
    print(tuning_table(scanned_arms(root)) + "\n")
    print(experiments_table(root))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs"))
