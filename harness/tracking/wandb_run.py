"""Weights & Biases logging behind a two-method interface; the only module that writes to wandb.

A training run talks to a `RunLogger`: `log(metrics, step)` at each evaluation and `finish(summary,
exit_code)` exactly once, also on a crash (callers use try/finally). `open_run` returns a W&B-backed
logger, or a `NullLogger` for `logger.backend: off`. W&B never stops training: if `wandb.init` or a
later call raises, one warning line goes to stderr and the logger turns into a no-op.

Offline by default: mode `auto` is online only when WANDB_API_KEY is set. Everything W&B writes (run
directories, cache, artifact staging, settings) stays under `logger.dir`, default `<sweep.dir>/wandb`;
runs land in `<dir>/wandb/offline-run-*/` and can be uploaded later with `wandb sync`.
(`harness.tracking.offline` reads those runs back.)
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import numbers
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from harness.config import LoggerConfig
from harness.tracking.offline import iter_records

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
