"""The sweep directory: atomic writes, finished-run detection, locks, the results table."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import store
from harness.config import ConfigError


def test_result_counts_only_when_complete_and_finished(tmp_path: Path) -> None:
    run = store.run_dir(tmp_path, "abc")
    run.mkdir(parents=True)
    assert store.read_result(run) is None
    (run / "result.json").write_text('{"status": "done", "val_l')  # torn write
    assert store.read_result(run) is None
    store.write_json(run / "result.json", {"status": "done", "val_loss": 1.5})
    assert store.read_result(run) == {"status": "done", "val_loss": 1.5}
    assert not list(run.glob("*.tmp"))


def test_changed_settings_for_an_existing_sweep_are_refused(tmp_path: Path) -> None:
    store.open_sweep(tmp_path, name="s", fingerprint="aaa", meta={})
    store.open_sweep(tmp_path, name="s", fingerprint="aaa", meta={})
    with pytest.raises(ConfigError, match="sweep.name=NEW_NAME"):
        store.open_sweep(tmp_path, name="s", fingerprint="bbb", meta={})


def test_lock_is_exclusive_between_holders(tmp_path: Path) -> None:
    run = store.run_dir(tmp_path, "abc")
    first = store.try_lock(run)
    assert first is not None
    from multiprocessing import get_context

    with get_context("spawn").Pool(1) as pool:
        assert pool.apply(_can_lock, (str(run),)) is False
    first.release()
    with get_context("spawn").Pool(1) as pool:
        assert pool.apply(_can_lock, (str(run),)) is True


def _can_lock(path: str) -> bool:
    lock = store.try_lock(Path(path))
    if lock is None:
        return False
    lock.release()
    return True


def test_results_table_round_trips_with_fixed_columns(tmp_path: Path) -> None:
    rows = [
        {"run_id": "a", "status": "done", "val_loss": 2.5, "tokens": 100, "extra": 1},
        {"run_id": "b", "status": "pending", "tokens": 200},
    ]
    store.write_results_table(tmp_path, rows)
    back = store.read_results_table(tmp_path)
    assert list(back[0]) == list(store.RESULT_COLUMNS)
    assert back[0]["val_loss"] == "2.5" and back[1]["val_loss"] == ""


def test_metrics_skip_torn_lines_and_truncate_after_checkpoint(tmp_path: Path) -> None:
    for step in (5, 10, 15):
        store.append_metrics(tmp_path, {"step": step})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 2')
    assert [r["step"] for r in store.read_metrics(tmp_path)] == [5, 10, 15]
    store.truncate_metrics(tmp_path, 10)
    assert [r["step"] for r in store.read_metrics(tmp_path)] == [5, 10]


def test_a_new_sweep_gets_one_instance_id_even_when_two_processes_create_it(tmp_path: Path) -> None:
    from multiprocessing import get_context

    with get_context("spawn").Pool(2) as pool:
        infos = pool.starmap(_open, [(str(tmp_path),)] * 4)
    assert len({info["instance"] for info in infos}) == 1  # whoever came second read the first's
    assert store.read_json(tmp_path / "sweep.json")["instance"] == infos[0]["instance"]
    assert store.create_once(tmp_path / "sweep.json", "{}") is False
    assert not list(tmp_path.glob(".*.tmp"))


def _open(path: str) -> dict:
    return store.open_sweep(Path(path), name="s", fingerprint="f", meta={"x": 1})


def test_refit_directories_are_new_each_time(tmp_path: Path) -> None:
    first, second = store.new_refit_dir(tmp_path), store.new_refit_dir(tmp_path)
    assert (first, second) == (tmp_path / "refits" / "1", tmp_path / "refits" / "2")
    assert first.is_dir() and second.is_dir()


def test_is_training_sees_another_process_holding_the_lock(tmp_path: Path) -> None:
    run = store.run_dir(tmp_path, "w16-abc")
    assert not store.is_training(run) and not run.exists()  # creates nothing for a run never started
    lock = store.try_lock(run)
    from multiprocessing import get_context

    with get_context("spawn").Pool(1) as pool:
        assert pool.apply(store.is_training, (run,)) is True
    lock.release()
    assert not store.is_training(run)


def test_results_files_are_as_readable_as_the_report(tmp_path: Path) -> None:
    store.write_results_table(tmp_path, [{"run_id": "a"}])
    store.write_json(tmp_path / "sweep.json", {})
    store.write_atomic(tmp_path / "report.md", "# fit\n")
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes["results.csv"] == modes["sweep.json"] == modes["report.md"]
