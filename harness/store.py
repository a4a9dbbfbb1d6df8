"""The sweep directory on disk: run dirs, atomic result files, locks, and the results table.

Layout (everything a fit needs, readable without torch; every name is a constant below):

    <sweep.dir>/sweep.json             settings fingerprint, instance id, resolved config, data facts
    <sweep.dir>/results.csv            one row per planned run (RESULT_COLUMNS)
    <sweep.dir>/lock                   held while results.csv and the fit are written
    <sweep.dir>/fit.json, report.md, plots/   the fit and its report (harness.report)
    <sweep.dir>/refits/<n>/            `python -m harness.refit` outputs (fit.json, report.md, plots/)
    <sweep.dir>/wandb/                 W&B's files, unless logger.dir or WANDB_DIR says otherwise
    <sweep.dir>/runs/<name>-<run_id>/  one run, e.g. runs/w32-d1-t4096-3fa9c1e2b7d0/:
        spec.json        the resolved RunSpec
        metrics.jsonl    one JSON object per eval: its metrics, and its evaluators' per-item `scores`
        result.json      written last and atomically: the run is finished
        checkpoint.pt    resumable state of an unfinished run
        fork-<step>.pt   a main run's state where branches fork (sweep.branches), kept until those
                         branches have finished

A run is finished exactly when result.json parses; every file is written to a temporary name,
fsynced and renamed, so a kill at any moment leaves either the old file or the new one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from harness.config import ConfigError

if TYPE_CHECKING:
    from harness.plan import RunSpec

SWEEP_JSON = "sweep.json"
RESULTS_CSV = "results.csv"
LOCK = "lock"
FIT_JSON = "fit.json"
REPORT_MD = "report.md"
PLOTS = "plots"
REFITS = "refits"
WANDB = "wandb"
RUNS = "runs"
SPEC = "spec.json"
METRICS = "metrics.jsonl"
RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"

# Columns of results.csv; units and conventions are documented in the README.
RESULT_COLUMNS = (
    "run_id", "name", "status", "width", "depth", "n_heads",
    "params_total", "params_embedding", "params_nonembedding",
    "tokens", "budget", "flops", "flops_6n", "flops_per_token", "flops_per_token_6n",
    "val_loss", "val_loss_se", "train_loss", "peak_lr", "batch_size", "steps", "seed",
    "epochs", "wall_s", "tokens_per_s", "diverged_step",
)  # fmt: skip
FINISHED = ("done", "diverged")  # statuses of a run that is not trained again


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()  # what open() would give a new file under this process's umask


class WriteError(OSError):
    """A file of the sweep directory could not be written (disk full, no permission); names the path."""


def _cannot_write(path: Path, exc: OSError) -> WriteError:
    return WriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}")


def write_atomic(path: Path, text: str) -> None:
    """Write text to path so that readers see the old or the new file, never a partial one.

    A failed write (disk full) leaves no temporary file behind and raises WriteError naming path.
    """
    try:
        _write_and_rename(path, text)
    except OSError as exc:
        raise _cannot_write(path, exc) from exc


def _write_and_rename(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600; results are as readable as any file we write
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: object) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> dict | None:
    """The parsed file, or None when it is missing or not valid JSON (a torn or foreign write)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def unwritable(path: Path) -> str | None:
    """Why a sweep directory could not be made or written at path, or None when it can. A temporary
    directory is made and removed in path, or in its nearest existing parent, so the check leaves
    nothing behind (and, unlike os.access, holds for root and for filesystems such as /proc)."""
    path = Path(path).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".harness-probe-"))
    except OSError as exc:
        return f"cannot create or write {path} ({existing}: {exc.strerror or exc})"
    return None


def open_sweep(sweep_dir: Path, *, name: str, fingerprint: str, meta: dict) -> dict:
    """Create the sweep dir, or check that an existing one was made with the same settings; return
    its sweep.json. A new sweep.json gets a random `instance` id: two sweeps of the same name and
    settings (two people, or a rerun after its directory was deleted) never share W&B run ids, while
    every rerun on this directory keeps them. Of two processes creating it at once, the first wins."""
    path = sweep_dir / SWEEP_JSON
    old = read_json(path)
    if old is None:
        info = {"name": name, "fingerprint": fingerprint, "instance": secrets.token_hex(4), **meta}
        create_once(path, json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
        old = read_json(path)
    if old is None or old.get("fingerprint") != fingerprint:
        raise ConfigError(
            f"sweep.name: sweep {name!r} in {sweep_dir} was run with other settings "
            f"(fingerprint {(old or {}).get('fingerprint')} != {fingerprint}); pass sweep.name=NEW_NAME "
            "to start a new sweep, or restore the old settings"
        )
    return old


def create_once(path: Path, text: str) -> bool:
    """Write path atomically unless it exists (then leave it alone); True when this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # atomic, and fails if path exists
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def new_refit_dir(base: Path) -> Path:
    """The first free `<base>/refits/<n>/` (n = 1, 2, ...), created, so a refit never replaces a fit."""
    n = 1
    while True:
        path = base / REFITS / str(n)
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
        except OSError as exc:
            raise _cannot_write(path, exc) from exc


def keep_fit(sweep_dir: Path) -> Path | None:
    """Move the sweep's fit (fit.json, report.md, plots/) into a new `refits/<n>/` before a fit with
    other settings replaces it; return that directory (None when there was no fit)."""
    if not (sweep_dir / FIT_JSON).exists():
        return None
    kept = new_refit_dir(sweep_dir)
    for name in (FIT_JSON, REPORT_MD, PLOTS):
        if (sweep_dir / name).exists():
            try:
                os.replace(sweep_dir / name, kept / name)
            except OSError as exc:
                raise _cannot_write(kept / name, exc) from exc
    return kept


def run_dir(sweep_dir: Path, dirname: str) -> Path:
    """A run's directory; `dirname` is `<name>-<run_id>` (RunSpec.dirname, or `row_dirname`)."""
    return sweep_dir / RUNS / dirname


def row_dirname(row: dict) -> str:
    """The run directory name of a results row (`name`, `run_id` columns)."""
    return f"{row['name']}-{row['run_id']}"


def read_result(run_path: Path) -> dict | None:
    """The finished run's result, or None when the run has not finished."""
    result = read_json(run_path / RESULT)
    return result if result is not None and result.get("status") in FINISHED else None


def finished_results(sweep_dir: Path, specs: Iterable[RunSpec]) -> dict[str, dict]:
    """The result of every finished run among `specs`, by run id: what the sweep has done, read once."""
    results = ((spec.run_id, read_result(run_dir(sweep_dir, spec.dirname))) for spec in specs)
    return {run_id: result for run_id, result in results if result is not None}


def run_lock(run_path: Path) -> FileLock:
    """An exclusive per-run lock (released by the OS if the holder dies)."""
    run_path.mkdir(parents=True, exist_ok=True)
    return FileLock(run_path / LOCK)


def outputs_lock(sweep_dir: Path) -> FileLock:
    """A lock on the sweep's shared outputs (results table, fit, report): of two processes sharing the
    directory, the one that reads the run results last then also writes them last."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(sweep_dir / LOCK)


def try_lock(run_path: Path) -> FileLock | None:
    """The run's lock if no other process holds it, else None."""
    lock = run_lock(run_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def is_training(run_path: Path) -> bool:
    """Whether another process holds the run's lock (is training it now); creates nothing."""
    if not (run_path / LOCK).exists():
        return False
    lock = try_lock(run_path)
    if lock is None:
        return True
    lock.release()
    return False


def append_metrics(run_path: Path, row: dict) -> None:
    """Append one eval row (a torn row from a kill or a full disk is skipped by read_metrics)."""
    path = run_path / METRICS
    try:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
    except OSError as exc:
        raise _cannot_write(path, exc) from exc


def read_metrics(run_path: Path, *, max_step: int | None = None) -> list[dict]:
    """Eval rows of a run (a torn last line from a kill is skipped)."""
    rows = []
    try:
        lines = (run_path / METRICS).read_text().splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if max_step is None or row.get("step", 0) <= max_step:
            rows.append(row)
    return rows


def scalars(row: dict) -> dict:
    """An eval row without its per-item scores: what a tracker logs."""
    return {k: v for k, v in row.items() if k != "scores"}


def write_metrics(run_path: Path, rows: Iterable[dict]) -> None:
    write_atomic(run_path / METRICS, "".join(json.dumps(r) + "\n" for r in rows))


def truncate_metrics(run_path: Path, max_step: int) -> None:
    """Drop eval rows (and their scores) after a checkpoint, so a resumed run does not log them twice:
    the one resume rule of everything a run measures."""
    write_metrics(run_path, read_metrics(run_path, max_step=max_step))


def fork_path(run_path: Path, step: int) -> Path:
    """A main run's saved state after `step` steps, where the branches forking there start."""
    return run_path / f"fork-{step}.pt"


def release_forks(sweep_dir: Path, specs: Iterable[RunSpec]) -> None:
    """Delete each fork checkpoint of the specs' main runs once every branch starting from it has finished."""
    forks, needed = set(), set()
    for spec in specs:
        if spec.parent is not None:
            fork = (spec.parent.dirname, spec.fork_step)
            forks.add(fork)
            if read_result(run_dir(sweep_dir, spec.dirname)) is None:
                needed.add(fork)
    for main_dir, step in forks - needed:
        fork_path(run_dir(sweep_dir, main_dir), step).unlink(missing_ok=True)


def write_results_table(sweep_dir: Path, rows: Iterable[dict]) -> Path:
    """Write results.csv atomically with RESULT_COLUMNS (missing values empty)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RESULT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in RESULT_COLUMNS})
    path = sweep_dir / RESULTS_CSV
    write_atomic(path, buf.getvalue())
    return path


def read_results_table(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / RESULTS_CSV, newline="") as f:
        return list(csv.DictReader(f))


def read_curves(sweep_dir: Path, rows: Iterable[dict]) -> dict[str, list[dict]]:
    """Eval rows of each results row's run, keyed by run id, for the training-curve envelope."""
    return {row["run_id"]: read_metrics(run_dir(sweep_dir, row_dirname(row))) for row in rows}
