"""Weights & Biases logging behind a two-method interface; the only module that imports wandb.

A training run talks to a `RunLogger`: `log(metrics, step)` at each evaluation and `finish(summary,
exit_code)` exactly once, also on a crash (callers use try/finally). `open_run` returns a W&B-backed
logger, or a `NullLogger` for `logger.backend: off`. W&B never stops training: if `wandb.init` or a
later call raises, one warning line goes to stderr and the logger turns into a no-op.

Offline by default: mode `auto` is online only when WANDB_API_KEY is set. Everything W&B writes (run
directories, cache, artifact staging, settings) stays under `logger.dir`, default `<sweep.dir>/wandb`;
runs land in `<dir>/wandb/offline-run-*/` and can be uploaded later with `wandb sync`.

`read_offline_run` parses an offline run's `run-<id>.wandb` transaction log (a leveldb-style record log
of `wandb_internal_pb2.Record` protobufs; wandb 0.31 ships no Python reader for it) so tests and
offline tools can check what was logged without a server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import re
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.config import LoggerConfig

# Metric keys with a section prefix are plotted against `tokens`; `flops` is a second x-axis choice.
_STEP_METRICS = ("tokens", "flops", "flops_6n", "step")
_SECTIONS = ("train/*", "val/*", "perf/*")
# W&B gives a metric one x-axis: these copies give the losses default charts against FLOPs too.
_BY_FLOPS = {"train/loss": "by_flops/train_loss", "val/loss": "by_flops/val_loss"}
_RUN_ID_MAX = 64  # W&B run ids become URL path segments; keep them short and unambiguous
_OFFLINE_INIT_TIMEOUT_S = 30.0  # offline init only starts the local service; it never needs 90 s

_lock = threading.Lock()
_started = False  # a run has started in this process (the W&B service is up)
_online_failed = False  # online init failed once: later runs of this process go straight to offline
_warned: set[str] = set()


class RunLogger(Protocol):
    """What a training or fit run writes to: metrics at a step, then one finish."""

    def log(self, metrics: dict[str, float], step: int) -> None: ...

    def finish(self, summary: dict | None = None, exit_code: int = 0) -> None: ...


class NullLogger:
    """Logs nothing: `logger.backend: off`, or W&B failed for this run."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def finish(self, summary: dict | None = None, exit_code: int = 0) -> None:
        pass


class WandbLogger:
    """One W&B run. Any exception from W&B is reported once and turns this logger into a no-op."""

    def __init__(self, run: Any) -> None:
        self._run = run
        settings = getattr(run, "settings", None)
        self._offline_log = Path(settings.sync_file) if getattr(settings, "_offline", False) else None

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self._run is None:
            return
        try:
            copies = {_BY_FLOPS[k]: v for k, v in metrics.items() if k in _BY_FLOPS}
            self._run.log({**metrics, **copies}, step=step)
        except Exception as e:  # noqa: BLE001 - W&B must never stop training
            self._abandon(e)

    def finish(self, summary: dict | None = None, exit_code: int = 0) -> None:
        run, self._run = self._run, None
        if run is None:
            return
        try:
            if summary:
                run.summary.update(dict(summary))
        except Exception as e:  # noqa: BLE001
            _warn_once(e)
        try:
            run.finish(exit_code=exit_code)
        except Exception as e:  # noqa: BLE001
            _warn_once(e)
            return
        self._wait_until_written()

    def _wait_until_written(self, timeout_s: float = 5.0) -> None:
        """Wait (a few ms) until an offline run's transaction log holds its exit record.

        `run.finish()` returns once the service has the exit, but the service writes and closes the
        `.wandb` file a moment later; whoever reads or syncs the offline run next needs the whole file.
        """
        if self._offline_log is None:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # a file still being written
                if any(r.WhichOneof("record_type") == "exit" for r in iter_records(self._offline_log)):
                    return
            time.sleep(0.005)

    def _abandon(self, error: BaseException) -> None:
        _warn_once(error)
        run, self._run = self._run, None
        with contextlib.suppress(Exception):  # release the run in the service; its state becomes 'failed'
            run.finish(exit_code=1)
            self._wait_until_written()


def _warn_once(error: BaseException, what: str = "W&B logging disabled for this run") -> None:
    """One stderr line per kind of trouble and process, so a sweep of 30 runs does not print 30."""
    if what in _warned:
        return
    _warned.add(what)
    reason = " ".join(f"{type(error).__name__}: {error}".split())
    print(f"warning: {what}: {reason} (repeats in this process not shown)", file=sys.stderr, flush=True)


def wandb_root(cfg: LoggerConfig, sweep_dir: Path) -> Path:
    """The directory that holds everything W&B writes for a sweep: `logger.dir` or `<sweep_dir>/wandb`."""
    return Path(cfg.dir if cfg.dir else Path(sweep_dir) / "wandb").absolute()


def resolve_mode(cfg: LoggerConfig) -> str:
    """`online`, `offline` or `disabled`. `auto` is online only with WANDB_API_KEY set, and a
    WANDB_MODE of offline/disabled in the environment is honoured under `auto`."""
    if cfg.mode != "auto":
        return cfg.mode
    env_mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if env_mode in ("disabled", "offline", "dryrun"):
        return "disabled" if env_mode == "disabled" else "offline"
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def wandb_run_id(group: str, run_id: str) -> str:
    """A stable W&B run id for a harness run: `<group>-<run_id>` in W&B's allowed characters.

    W&B rejects `:;,#?/'` and uses the id in URLs, so anything outside `[A-Za-z0-9._-]` becomes `-`;
    an id longer than 64 characters keeps its head and gains a hash of the whole, so it stays unique.
    """
    raw = f"{group}-{run_id}" if group else run_id
    rid = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.") or "run"
    if len(rid) > _RUN_ID_MAX:
        rid = f"{rid[: _RUN_ID_MAX - 9].rstrip('-.')}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return rid


def _point_wandb_at(root: Path) -> None:
    # wandb reads these at call time (artifact staging and cache) or once at setup (config dir);
    # unset, they default to ~/.cache/wandb, ~/.local/share/wandb, ~/.config/wandb and ./artifacts.
    root.mkdir(parents=True, exist_ok=True)
    os.environ["WANDB_DIR"] = str(root)
    os.environ["WANDB_CACHE_DIR"] = str(root / "cache")
    os.environ["WANDB_DATA_DIR"] = str(root / "data")
    os.environ["WANDB_ARTIFACT_DIR"] = str(root / "artifacts")
    os.environ["WANDB_CONFIG_DIR"] = str(root / "config")


def _quiet_settings(wandb: Any, **extra: Any) -> Any:
    # silent: no banner, run URL or sync hints; console off: the trainer's stdout is not copied
    return wandb.Settings(silent=True, console="off", **extra)


def _init_run(
    cfg: LoggerConfig,
    *,
    sweep_dir: Path,
    group: str,
    run_id: str,
    name: str,
    job_type: str,
    config: dict,
) -> Any | None:
    """Start a W&B run, or return None (after one warning) if W&B is off or fails.

    An online start that fails (no network, bad key, a 90 s init timeout) falls back to offline, for
    this run and the rest of the process, so the runs can still be synced later and a sweep does not
    wait out the timeout once per run.
    """
    global _online_failed
    mode = resolve_mode(cfg)
    if cfg.backend == "off" or mode == "disabled":
        return None
    kwargs = dict(
        project=cfg.project,
        entity=cfg.entity or None,
        group=group,
        job_type=job_type,
        name=name,
        id=wandb_run_id(group, run_id),
        resume="allow",
        tags=list(cfg.tags) or None,
        config=config,
    )
    root = wandb_root(cfg, sweep_dir)
    if mode == "online" and not _online_failed:
        try:
            return _start_run(root, "online", kwargs)
        except Exception as e:  # noqa: BLE001 - W&B must never stop training
            _online_failed = True
            _warn_once(e, "W&B online start failed, logging offline instead")
    try:
        return _start_run(root, "offline", kwargs)
    except Exception as e:  # noqa: BLE001
        _warn_once(e)
        return None


def _start_run(root: Path, mode: str, kwargs: dict) -> Any:
    global _started
    import wandb

    with _lock:
        _point_wandb_at(root)
        if not _started:
            # One service process for the whole sweep; each run then costs only its own start/stop.
            wandb.setup(settings=_quiet_settings(wandb))
        online = mode == "online"
        settings = {
            "reinit": "create_new",  # runs trained in threads of one process each keep their own run
            # Listing installed packages costs ~0.2 s a run, most of an offline run's overhead; the
            # environment is the same for every run of a process, so the first run keeps the list.
            "x_save_requirements": not _started,
            "x_disable_stats": not online,  # system metrics (GPU use) only where someone watches live
        }
        if not online:
            settings["init_timeout"] = _OFFLINE_INIT_TIMEOUT_S
        run = wandb.init(**kwargs, mode=mode, dir=str(root), settings=_quiet_settings(wandb, **settings))
        _started = True
        return run


def open_run(
    cfg: LoggerConfig,
    *,
    sweep_dir: Path,
    group: str,
    run_id: str,
    name: str,
    job_type: str,
    config: dict,
) -> RunLogger:
    """Open the W&B run of one harness run (group = sweep name); its metrics plot against tokens, and
    `by_flops/train_loss`, `by_flops/val_loss` (copies of the losses) against FLOPs (full count).

    The W&B id is `wandb_run_id(group, run_id)` with `resume="allow"`, so a resumed harness run continues
    the same W&B run. Returns a `NullLogger` when the backend is off or W&B cannot start.
    """
    run = _init_run(
        cfg, sweep_dir=sweep_dir, group=group, run_id=run_id, name=name, job_type=job_type, config=config
    )
    if run is None:
        return NullLogger()
    logger = WandbLogger(run)
    try:
        for key in _STEP_METRICS:
            run.define_metric(key)
        for glob in _SECTIONS:
            run.define_metric(glob, step_metric="tokens")
        run.define_metric("lr", step_metric="tokens")
        run.define_metric("by_flops/*", step_metric="flops")
        # An explicit summary turns the summary value into a dict ({"min": .., "last": ..}); train/loss
        # keeps W&B's default, the last value as a plain number.
        run.define_metric("val/loss", step_metric="tokens", summary="min,last")
    except Exception as e:  # noqa: BLE001
        logger._abandon(e)
        return NullLogger()
    return logger


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Numbers and strings of a nested fit dict as `a/b/c` keys; lists get their index as a key."""
    out: dict[str, Any] = {}
    if hasattr(obj, "tolist") and not isinstance(obj, numbers.Number):
        obj = obj.tolist()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}/{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}/{i}" if prefix else str(i)))
    elif isinstance(obj, bool | str):
        out[prefix] = obj
    elif isinstance(obj, numbers.Number):
        out[prefix] = obj.item() if hasattr(obj, "item") else obj
    return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _positive(value: Any) -> bool:
    value = _plain(value)
    return isinstance(value, numbers.Real) and math.isfinite(value) and value > 0


def log_fit(
    cfg: LoggerConfig,
    *,
    sweep_dir: Path,
    group: str,
    fit: dict,
    plots: list[Path],
    rows: list[dict],
    compute_key: str = "flops",
    loss_key: str = "val_loss",
) -> None:
    """Log the scaling-law fit as one run with job_type 'fit' in the sweep's group.

    Plots go in as `plots/<stem>` images, `fit`'s numbers into the summary as `a/b` keys, the results
    rows as the table `results`, and a loss-vs-compute scatter in log10-log10 coordinates as
    `fit/loss_vs_compute` (W&B's built-in scatter has no log axes). Never raises.
    """
    run = _init_run(
        cfg,
        sweep_dir=sweep_dir,
        group=group,
        run_id="fit",
        name=f"{group}-fit",
        job_type="fit",
        config={"sweep": group, "n_runs": len(rows)},
    )
    if run is None:
        return
    logger = WandbLogger(run)
    try:
        import wandb

        data: dict[str, Any] = {}
        for path in plots:
            if Path(path).is_file():
                data[f"plots/{Path(path).stem}"] = wandb.Image(str(path), caption=Path(path).stem)
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        if columns:
            data["results"] = wandb.Table(
                columns=columns, data=[[_plain(row.get(c)) for c in columns] for row in rows]
            )
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
            run.log(data)
    except Exception as e:  # noqa: BLE001
        logger._abandon(e)
        return
    logger.finish(summary=_flatten(fit))


# ---------------------------------------------------------------------------------------------------
# Reading offline runs back (tests, offline inspection)
# ---------------------------------------------------------------------------------------------------

# The transaction log: a 7-byte file header (":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of
# records `crc32 (IEEE, over type byte + data) | length uint16 | type uint8 | data`, little-endian, as in
# leveldb's log format. A record too big for its block is split FIRST/MIDDLE/LAST; a block tail shorter
# than a header is zero padding. Block boundaries count from the start of the file, header included.
_HEADER = struct.Struct("<4sHB")
_RECORD = struct.Struct("<IHB")
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def iter_records(path: Path) -> Iterator[Any]:
    """The `wandb_internal_pb2.Record`s of a `run-*.wandb` file, in order; a truncated tail ends it."""
    from wandb.proto import wandb_internal_pb2

    buf = Path(path).read_bytes()
    if len(buf) < _HEADER.size:
        return
    ident, magic, version = _HEADER.unpack_from(buf)
    if ident != b":W&B" or magic != 0xBEE1 or version != 0:
        raise ValueError(f"{path}: not a W&B transaction log (header {buf[:7]!r})")
    pos, parts = _HEADER.size, []
    while pos < len(buf):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD.size:
            pos += left
            continue
        if pos + _RECORD.size > len(buf):
            return
        crc, length, kind = _RECORD.unpack_from(buf, pos)
        if kind == 0 and length == 0:  # zero padding / preallocated tail
            pos += left
            continue
        data = buf[pos + _RECORD.size : pos + _RECORD.size + length]
        if len(data) < length:
            return  # the writer was killed mid-record
        if zlib.crc32(data, zlib.crc32(bytes([kind]))) != crc:
            raise ValueError(f"{path}: checksum mismatch at byte {pos}")
        pos += _RECORD.size + length
        if kind == _FULL:
            parts = [data]
        elif kind in (_FIRST, _MIDDLE):
            parts = [data] if kind == _FIRST else [*parts, data]
            continue
        elif kind == _LAST:
            parts.append(data)
        else:
            raise ValueError(f"{path}: unknown record type {kind} at byte {pos}")
        record = wandb_internal_pb2.Record()
        record.ParseFromString(b"".join(parts))
        parts = []
        yield record


def _item_path(item: Any) -> list[str]:
    return [item.key] if item.key else list(item.nested_key)


def _set_path(target: dict, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        node = target.get(key)
        if not isinstance(node, dict):
            node = target[key] = {}
        target = node
    target[path[-1]] = value


def _del_path(target: dict, path: list[str]) -> None:
    for key in path[:-1]:
        target = target.get(key, {})
    if isinstance(target, dict):
        target.pop(path[-1], None)


@dataclass
class OfflineRun:
    """What one offline run directory says was logged; `exit_code` is None if the run never finished."""

    run_dir: Path
    run_id: str
    project: str
    group: str
    job_type: str
    name: str
    tags: list[str]
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    # define_metric calls: metric name or glob -> {"step_metric": str, "summary": [aggregates]}
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    exit_code: int | None = None


def read_offline_run(run_dir: Path) -> OfflineRun:
    """Replay the transaction log of `<dir>/wandb/offline-run-*/` (or of a `.wandb` file) into an OfflineRun.

    Config and summary are the state after the last update; history has one dict per logged step, keyed
    like `run.log` (plus W&B's `_step`, `_runtime`, `_timestamp`). W&B's own `_wandb` config is dropped.
    """
    run_dir = Path(run_dir)
    path = run_dir if run_dir.suffix == ".wandb" else next(iter(sorted(run_dir.glob("run-*.wandb"))), None)
    if path is None:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb transaction log")
    run = OfflineRun(run_dir=path.parent, run_id="", project="", group="", job_type="", name="", tags=[])

    def apply(target: dict, updates: Any, removes: Any = ()) -> None:
        for item in updates:
            _set_path(target, _item_path(item), json.loads(item.value_json))
        for item in removes:
            _del_path(target, _item_path(item))

    for record in iter_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.project, run.group, run.job_type = r.run_id, r.project, r.run_group, r.job_type
            run.name, run.tags = r.display_name, list(r.tags)
            apply(run.config, r.config.update, r.config.remove)
            apply(run.summary, r.summary.update, r.summary.remove)
        elif kind == "config":
            apply(run.config, record.config.update, record.config.remove)
        elif kind == "summary":
            apply(run.summary, record.summary.update, record.summary.remove)
        elif kind == "history":
            row: dict[str, Any] = {}
            apply(row, record.history.item)
            run.history.append(row)
        elif kind == "metric" and not record.metric.expanded_from_glob:
            m = record.metric
            aggregates = [f.name for f, on in m.summary.ListFields() if on is True]
            run.metrics[m.name or m.glob_name] = {"step_metric": m.step_metric, "summary": sorted(aggregates)}
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    run.config.pop("_wandb", None)
    return run


def offline_run_dirs(root: Path) -> list[Path]:
    """Every offline run directory under `root` (a `logger.dir`), in the order the runs started.

    Directory names only resolve the second a run started in, so the run record's start time orders
    the runs within one second.
    """

    def started(run_dir: Path) -> tuple[int, int, str]:
        for record in iter_records(next(run_dir.glob("run-*.wandb"))):
            if record.WhichOneof("record_type") == "run":
                return record.run.start_time.seconds, record.run.start_time.nanos, run_dir.name
        return sys.maxsize, 0, run_dir.name

    return sorted({p.parent for p in Path(root).rglob("offline-run-*/run-*.wandb")}, key=started)
