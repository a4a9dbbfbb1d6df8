"""Weights & Biases logging behind a two-method interface; the only module that starts W&B runs.

A training run talks to a `RunLogger`: `log(metrics, step)` at each evaluation and `finish(summary,
exit_code)` exactly once, also on a crash (callers use try/finally). `open_run` returns a W&B-backed
logger, or a `NullLogger` for `logger.backend: off`. W&B never stops training: if `wandb.init` or a
later call raises, one warning line goes to stderr and the logger turns into a no-op.

Online or offline: `harness.tracking.mode`. Where: `logger.dir`, else the user's WANDB_DIR, else
`<sweep.dir>/wandb`; W&B's cache, data and artifact directories likewise stay the user's when set and
default to that directory; the user's W&B settings (WANDB_CONFIG_DIR) are never redirected. Offline
runs land in `<dir>/wandb/offline-run-*/` and upload with `wandb sync` (`mode.sync_command`).

Run ids. A harness run is `<group>-<run_id>` in W&B, where the group is `<sweep name>-<instance>`
(store.open_sweep draws the instance once per sweep directory), so two sweeps of the same name never
share ids, and every rerun on one directory continues the same W&B run (`resume="allow"`), online
and offline alike: an offline attempt is one more `offline-run-*-<id>` folder, and `wandb sync` uploads
the folders of one id in order of their start, as one run (wandb/wandb#10708; `wandb sync --help` of
the wandb installed here says so).

Summaries. A training run's summary is its result row under results.csv's names (`val_loss`,
`tokens_per_s`, ...: docs/results.md); its history metrics that the row already holds, or that would
read as it under another meaning (the last interval's `perf/tokens_per_s`), keep no summary value of
their own, so each quantity has one name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from harness.config import LoggerConfig
from harness.tracking.mode import resolve_mode
from harness.tracking.offline import iter_records

# Metric keys with a section prefix are plotted against `tokens`; `flops` is a second x-axis choice.
_STEP_METRICS = ("tokens", "flops", "flops_6n", "step")
# History metrics that keep no summary value: the result row names each of these quantities once
# (val_loss, tokens, ...), or their last value means another one (perf/tokens_per_s of the last interval,
# not the run's tokens_per_s). The other val/* metrics (ability and task scores) keep their last value.
_NO_SUMMARY = ("train/*", "perf/*", "lr", "val/loss", "val/loss_se")
# W&B gives a metric one x-axis: these copies give the losses default charts against FLOPs too.
_BY_FLOPS = {"train/loss": "by_flops/train_loss", "val/loss": "by_flops/val_loss"}
_RUN_ID_MAX = 64  # W&B run ids become URL path segments; keep them short and unambiguous
# W&B's directories that default to the sweep's W&B directory unless the user set them; as set by the
# user, before this module set any (the values written back below are ours).
_DIR_VARS = {"WANDB_CACHE_DIR": "cache", "WANDB_DATA_DIR": "data", "WANDB_ARTIFACT_DIR": "artifacts"}
_USER_ENV = {var: os.environ.get(var) for var in ("WANDB_DIR", *_DIR_VARS)}
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


def fell_back() -> bool:
    """Whether an online start failed in this process, so that its runs since went offline."""
    return _online_failed


def wandb_root(cfg: LoggerConfig, sweep_dir: Path) -> Path:
    """The directory that holds the W&B runs of a sweep: `logger.dir`, the user's WANDB_DIR, or
    `<sweep_dir>/wandb`."""
    return Path(cfg.dir or _USER_ENV["WANDB_DIR"] or Path(sweep_dir) / "wandb").absolute()


def group_name(sweep: str, instance: str) -> str:
    """The W&B group of a sweep directory: its name and instance id (store.open_sweep)."""
    return f"{sweep}-{instance}" if instance else sweep


def wandb_run_id(group: str, run_id: str) -> str:
    """A stable W&B run id for a harness run: `<group>-<run_id>` in W&B's allowed characters.

    W&B rejects `:;,#?/'` and uses the id in URLs, so anything outside `[A-Za-z0-9._-]` becomes `-`;
    an id longer than W&B's 64 characters keeps its head and gains a hash of the whole, so it stays
    unique.
    """
    raw = f"{group}-{run_id}" if group else run_id
    rid = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.") or "run"
    if len(rid) > _RUN_ID_MAX:
        rid = f"{rid[: _RUN_ID_MAX - 9].rstrip('-.')}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return rid


def attempts(root: Path, rid: str) -> int:
    """How many times W&B run rid was started with its files under root (a `wandb_root`): its local
    folders (`run-<time>-<rid>` online, `offline-run-<time>-<rid>` offline, `-<k>` appended to a second
    one started within the same second), each holding the transaction log `run-<rid>.wandb`."""
    return len(list((root / "wandb").glob(f"*run-*/run-{rid}.wandb")))  # not the latest-run link


def _point_wandb_at(root: Path) -> None:
    # wandb reads these at call time (artifact staging and cache); unset by the user, they would
    # default to ~/.cache/wandb, ~/.local/share/wandb and ./artifacts, outside the sweep. The runs'
    # own directory is wandb.init's `dir`, so WANDB_DIR stays as the user left it.
    root.mkdir(parents=True, exist_ok=True)
    for var, sub in _DIR_VARS.items():
        os.environ[var] = _USER_ENV[var] or str(root / sub)


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
    tags: tuple[str, ...] = (),
) -> Any | None:
    """Start a W&B run, or return None (after one warning) if W&B is off or fails.

    An online start that fails (bad key, a server that stops answering) falls back to offline for this
    run, which is then logged offline like the rest, and for the rest of the process, so a sweep does
    not wait out the timeout once per run.
    """
    global _online_failed
    mode = resolve_mode(cfg).mode
    if mode == "disabled":
        return None
    kwargs = dict(
        project=cfg.project,
        entity=cfg.entity or None,
        group=group,
        job_type=job_type,
        name=name,
        tags=sorted({*cfg.tags, *tags}) or None,
        config=config,
        id=wandb_run_id(group, run_id),
        resume="allow",  # a rerun continues the run, online and offline
    )
    root = wandb_root(cfg, sweep_dir)
    if mode == "online" and not _online_failed:
        try:
            return _start_run(root, "online", kwargs)
        except Exception as e:  # noqa: BLE001 - W&B must never stop training
            _online_failed = True
            _warn_once(e, "W&B online start failed, logging offline instead")
            _restart_service()  # the failed run still holds its id in the service
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


def _restart_service() -> None:
    """Stop W&B's service process, so the next run starts a fresh one (`wandb.teardown`)."""
    global _started
    import wandb

    with _lock, contextlib.suppress(Exception):
        wandb.teardown()
        _started = False


def open_run(cfg: LoggerConfig, **identity: Any) -> RunLogger:
    """Open the W&B run of one harness run; `identity`: `_init_run`'s keywords (sweep_dir, group, run_id,
    name, job_type, config, tags). Its metrics plot against tokens, and `by_flops/train_loss`,
    `by_flops/val_loss` (copies of the losses) against FLOPs (full count).

    The W&B id is `wandb_run_id(group, run_id)`, continued by every later attempt (`resume="allow"`);
    `tags` are added to `logger.tags`. Its summary is what `finish` gets (the result row) and the last
    ability and task scores; the other history metrics keep none. Returns a `NullLogger` when the
    backend is off or W&B cannot start.
    """
    run = _init_run(cfg, **identity)
    if run is None:
        return NullLogger()
    logger = WandbLogger(run)
    try:
        for key in _STEP_METRICS:
            run.define_metric(key, summary="none")
        for key in _NO_SUMMARY:
            run.define_metric(key, step_metric="tokens", summary="none")
        run.define_metric("val/*", step_metric="tokens")
        run.define_metric("by_flops/*", step_metric="flops", summary="none")
    except Exception as e:  # noqa: BLE001
        logger._abandon(e)
        return NullLogger()
    return logger
