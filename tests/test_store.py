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
