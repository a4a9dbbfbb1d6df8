"""The docs' result tables are the current code's verdicts on the pinned results: every ingredient
experiment is re-judged from its pinned result tables (tests/data/experiments/, the runs' results.csv)
with the tuning and rules its config records, and the tables scripts/experiment_tables.py renders from
them must appear line for line in docs/experiments.md; each arm's tuning record must be what its pinned LR
scan (tests/data/lr_scan/) gives."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness import store
from harness.compose import compose_raw
from harness.studies.compare import compare_dir
from harness.studies.compare.experiment import record_experiment
from harness.studies.compare.judge import Rules
from tests.conftest import CONFIG_DIR, ROOT, compose_config, load_script

DATA = Path(__file__).parent / "data"
tables = load_script("experiment_tables")


def callback_and_variants(experiment: str) -> tuple:
    """The experiment's compare callback config and its variants, as its multirun composes them."""
    cfg = compose_raw(f"experiment={experiment}")
    return cfg.hydra.callbacks.compare, cfg.hydra.sweeper.params[f"experiment/{experiment}"].split(",")


def pin_experiment(root: Path, experiment: str) -> None:
    """root/exp-<experiment>/ as its multirun left it, from the pinned results: each variant's sweep
    directory (its results.csv: tests/data/experiments/<sweep name>.csv), experiment.json with the rules
    and tuning its config records, and the comparison the current code makes of them."""
    callback, variants = callback_and_variants(experiment)
    for v in variants:
        sweep = compose_config(f"experiment={experiment}", f"experiment/{experiment}={v}").sweep
        d = root / Path(sweep.dir).relative_to("runs")
        if not d.exists():
            d.mkdir(parents=True)
            (d / store.RESULTS_CSV).write_bytes((DATA / "experiments" / f"{sweep.name}.csv").read_bytes())
            store.write_json(d / store.SWEEP_JSON, {"config": {"fit": {"bootstrap": 50}}})
    shared = callback.get("reference_dir")
    ref_dir = str(root / Path(shared).relative_to("runs")) if shared else ""
    exp = root / f"exp-{experiment}"
    tuning = OmegaConf.to_container(callback.tuning)
    record_experiment(exp, reference=callback.reference, reference_dir=ref_dir, rules=Rules(), tuning=tuning)
    compare_dir(exp)


def assert_in_doc(table: str, doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text()
    missing = [line for line in table.splitlines() if line and line not in text]
    assert not missing, f"docs/{doc} lacks (python scripts/experiment_tables.py):\n" + "\n".join(missing)


@pytest.fixture(scope="module")
def pinned_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for experiment in tables.EXPERIMENTS:
        pin_experiment(root, experiment)
    return root


def test_the_docs_experiment_tables_are_the_codes_verdicts_on_the_pinned_results(pinned_runs: Path) -> None:
    assert_in_doc(tables.tuning_table(tables.scanned_arms(pinned_runs)), "experiments.md")
    assert_in_doc(tables.experiments_table(pinned_runs), "experiments.md")


@pytest.mark.parametrize("arm", ["reference", "lstm", "sgd", "last_token"])
def test_each_arms_tuning_record_is_its_pinned_scans_optimum(arm: str) -> None:
    """The optima and LR grid an arm's record states (configs/experiment/tuning/) are what scripts/lr_table.py
    finds in the arm's pinned scan (tests/data/lr_scan/: its runs' results.csv rows)."""
    tuning = CONFIG_DIR / "experiment" / "tuning"
    record = OmegaConf.merge(OmegaConf.load(tuning / "lr_scan.yaml"), OmegaConf.load(tuning / f"{arm}.yaml"))
    with (DATA / "lr_scan" / f"{record.scanned}.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    lr_table = load_script("lr_table")
    assert sorted({float(r["peak_lr"]) for r in rows}) == list(record.grid.lr)
    assert [(w, float(f"{o:.3g}")) for w, o in lr_table.scan_optima(rows)] == list(
        zip(record.grid.widths, record.optimum, strict=True)
    )


def test_every_pinned_comparison_records_one_tuning_procedure(pinned_runs: Path) -> None:
    for experiment in tables.EXPERIMENTS:
        c = json.loads((pinned_runs / f"exp-{experiment}" / "comparison.json").read_text())
        assert c["tuning_procedure"] in ("lr_scan", "none") and not c["failed"]
