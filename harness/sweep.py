"""Entry point: compose -> validate -> plan -> train (skipping finished runs) -> results -> fit -> report.

python -m harness.sweep                      # the cpu preset (gpu preset when CUDA is present)
python -m harness.sweep sweep=smoke logger=off
python -m harness.sweep --cfg job            # print the composed config
"""

from __future__ import annotations

import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from harness import console, store
from harness.config import Config, ConfigError, register_configs
from harness.data import TokenSource, make_source
from harness.hashing import stable_hash
from harness.launch import check_launcher, check_sharding, job_configs, place_on_gpu
from harness.overrides import check_overrides
from harness.plan import NON_NUMERIC_TRAIN_FIELDS, RunSpec, check_config, compute_summary, plan_runs, shard
from harness.tracking import Mode, resolve_mode

if TYPE_CHECKING:
    from harness.device import Device


def settings_fingerprint(cfg: Config, data_fingerprint: str, precision: str) -> str:
    """Hash of every setting shared by a sweep's runs that changes their numbers."""
    train = {k: v for k, v in asdict(cfg.train).items() if k not in NON_NUMERIC_TRAIN_FIELDS}
    return stable_hash(
        {"model": asdict(cfg.model), "train": train, "data": data_fingerprint, "precision": precision}, 12
    )


class Interrupted(Exception):
    """Ctrl-C during a sweep; the message says what finished and how to continue."""


def preflight(cfg: Config) -> Mode:
    """Every check of a sweep before anything is written (a dry run's too): its config, that its
    directory can be made and written, and WANDB_MODE; return the W&B mode its runs log in."""
    check_config(cfg)
    if problem := store.unwritable(Path(cfg.sweep.dir)):
        raise ConfigError(f"sweep.dir: {problem}")
    return resolve_mode(cfg.logger)


@dataclass(frozen=True)
class Planned:
    """A sweep checked and planned, nothing written: its runs, the finished ones, where and how it trains."""

    cfg: Config  # with the W&B mode decided (logger.mode)
    mode: Mode
    source: TokenSource
    dev: Device | None  # None when only fitting
    device: str
    precision: str
    specs: tuple[RunSpec, ...]
    mine: tuple[RunSpec, ...]  # this shard's runs (none when only fitting)
    done: dict[str, dict]  # finished results by run id
    workers: int
    threads: int
    started: float  # time.monotonic() when plan_sweep began

    @property
    def runs_at_once(self) -> int:
        """Runs training side by side, each as fast as alone: one per core; a GPU's packed runs share it."""
        return self.workers if self.device == "cpu" else 1

    @property
    def todo(self) -> list[RunSpec]:
        return [s for s in self.mine if s.run_id not in self.done]

    def estimate(self, command: bool = False) -> tuple[float, str] | None:
        """The start screen's estimate of the runs still to train and the sweep's fixed costs (seconds,
        basis), from the process's start when the sweep is the command, else from `plan_sweep`'s; None
        when nothing is left to train."""
        todo = self.todo
        if not todo:
            return None
        return console.estimate(
            self.cfg, todo, list(self.done.values()), self.source, self.dev,
            runs_at_once=self.runs_at_once, logging=self.mode.mode != "disabled",
            started=None if command else self.started,
        )  # fmt: skip


def plan_sweep(cfg: Config) -> Planned:
    """Check cfg (every check a dry run makes), build its data source and device and plan its runs."""
    started = time.monotonic()
    mode = preflight(cfg)  # decided once: the runs need not each probe the server
    # torch loads only once the config is known to be good (the models in the training processes).
    from harness.device import cpu_layout, resolve_device, usable_cores

    fit_only = cfg.sweep.stage == "fit"  # trains nothing, so any thread count (0: all cores) will do
    workers, threads = (
        (1, 0) if fit_only else cpu_layout(cfg.train.threads, cfg.sweep.workers, usable_cores())
    )
    source = make_source(cfg.data)
    if source.vocab_size > cfg.data.vocab_size:
        raise ConfigError(
            f"data.vocab_size: {cfg.data.vocab_size} is smaller than the data's {source.vocab_size} token ids"
        )
    sweep_dir = Path(cfg.sweep.dir)
    dev, device, precision = _device(cfg, sweep_dir, threads, resolve_device)
    specs = plan_runs(
        cfg, vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision=precision
    )
    if mode.mode != "disabled":
        cfg = replace(cfg, logger=replace(cfg.logger, mode=mode.mode))
    mine = () if fit_only else shard(specs, cfg.sweep.shard, cfg.sweep.num_shards)
    _, too_many_epochs = console.passes(specs, source.train_tokens, cfg.sweep.max_epochs)
    if too_many_epochs and not cfg.sweep.dry_run:  # before the estimate times any step (a dry run says it)
        raise ConfigError(too_many_epochs)
    done = store.finished_results(sweep_dir, specs)
    mine = tuple(mine)
    return Planned(cfg, mode, source, dev, device, precision, specs, mine, done, workers, threads, started)


def run_sweep(cfg: Config, command: bool = False) -> Path:
    """Run the stage (`sweep.stage`) of the sweep described by cfg; return the sweep directory. Prints
    the start screen first (the plan, paths, W&B mode, estimated time: from the process's start when
    the sweep is the `command`); `sweep.dry_run` stops there."""
    planned = plan_sweep(cfg)
    from harness.evaluate import describe
    from harness.execute import train_planned
    from harness.tracking import log_fit, open_run

    cfg, source, specs, mine, done = planned.cfg, planned.source, planned.specs, planned.mine, planned.done
    device, precision, mode = planned.device, planned.precision, planned.mode
    sweep_dir = Path(cfg.sweep.dir)
    try:
        eta = planned.estimate(command)
        console.start(cfg, specs, mine, sweep_dir, device, precision, mode, done, eta, source.train_tokens)
        if cfg.sweep.dry_run:
            return sweep_dir
        meta = {
            "config": asdict(cfg),
            "data": {"source": source.name, "fingerprint": source.fingerprint, **source.info},
            "bayes_loss": source.bayes_loss,
            "python": platform.python_version(),
            "device": device,
            "precision": precision,
            "preset": _preset(),
            "compute": compute_summary(specs),
        }
        fingerprint = settings_fingerprint(cfg, source.fingerprint, precision)
        record = {**meta, "evaluators": describe(source)}  # what the studies need to read the scores
        info = store.open_sweep(sweep_dir, name=cfg.sweep.name, fingerprint=fingerprint, meta=record)
        wb = console.WandbIdentity(cfg, sweep_dir, info, device)
        if mine:
            opener = partial(open_run, group=wb.group, tags=wb.tags)
            train_planned(
                cfg,
                mine,
                sweep_dir,
                done=set(done),
                source=source,
                dev=planned.dev,
                workers=planned.workers,
                threads=planned.threads,
                open_run=opener,
            )
        with store.outputs_lock(sweep_dir):  # another process on this directory may be writing them too
            rows = _collect(sweep_dir, specs)
            store.write_results_table(sweep_dir, rows)
            if partial_note := console.missing(sweep_dir, rows):
                print(partial_note)
            fitted = False
            if cfg.sweep.stage in ("all", "fit"):
                logger = partial(log_fit, group=wb.group, tags=wb.tags)
                fitted = _fit(cfg, rows, sweep_dir, source.bayes_loss, meta, logger)
            print(console.outputs(sweep_dir, rows, wb, mode, fitted))
    except KeyboardInterrupt:
        finished = len(store.finished_results(sweep_dir, specs))
        raise Interrupted(
            f"interrupted: {finished} of {len(specs)} runs done; rerun the same command to continue"
        ) from None
    return sweep_dir


def _fit(cfg: Config, rows, sweep_dir: Path, bayes_loss, meta: dict, log_fit) -> bool:
    """Fit the finished runs and write the report (True); a sweep too small to fit says why (False)."""
    from harness.fit import FitError
    from harness.report import analyse, summary_text

    previous = store.read_json(sweep_dir / store.FIT_JSON) or {}
    if previous.get("meta", {}).get("config", {}).get("fit", asdict(cfg.fit)) != asdict(cfg.fit):
        print(f"the previous fit (other fit settings) is kept in {store.keep_fit(sweep_dir)}/")
    curves = store.read_curves(sweep_dir, rows)
    try:
        report = analyse(
            rows,
            cfg.fit,
            sweep_dir,
            curves=curves,
            bayes_loss=bayes_loss,
            meta=meta,
            design=cfg.sweep.design,
        )
    except FitError as exc:
        print(f"fit skipped: {exc}", file=sys.stderr)
        return False
    files = [sweep_dir / name for name in (store.RESULTS_CSV, store.FIT_JSON, store.REPORT_MD)]
    plots = sorted((sweep_dir / store.PLOTS).glob("*.png"))
    log_fit(
        cfg.logger,
        sweep_dir=sweep_dir,
        fit=report.to_dict(),
        settings=asdict(cfg.fit),
        plots=plots,
        rows=rows,
        files=files,
    )
    print(summary_text(report, next_step=console.next_step(meta.get("preset", ""))))
    return True


def _device(cfg: Config, sweep_dir: Path, threads: int, resolve_device) -> tuple:
    """(Device or None, device type, precision) of the sweep. Fitting alone takes the ones the runs were
    trained with from sweep.json (precision is part of each run id), so a machine without the sweep's
    GPU, such as a cluster's login node, can fit it."""
    trained = store.read_json(sweep_dir / store.SWEEP_JSON) if cfg.sweep.stage == "fit" else None
    if trained is not None:
        return None, trained["device"], trained["precision"]
    place_on_gpu(cfg.sweep.shard, cfg.train.device)
    dev = resolve_device(cfg.train, threads)
    return dev, dev.type, dev.precision


def _collect(sweep_dir: Path, specs: tuple[RunSpec, ...]) -> list[dict]:
    """One row per planned run: its result when finished, else its plan with status pending."""
    done = store.finished_results(sweep_dir, specs)
    return [done.get(spec.run_id) or {**spec.planned_row(), "status": "pending"} for spec in specs]


class FitAfterJobs(Callback):
    """Hydra callback of a multirun (registered in configs/config.yaml): checks the launcher and every
    job's config before any starts (a dry run prints every job's start screen here and stops, before
    Hydra's launcher writes <sweep.dir>/multirun/ or an experiment's callback its experiment.json), and
    once all have returned (each trained its shard) writes the results table of each sweep and fits
    it, once, in the launching process."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from harness.device import cpu_layout, usable_cores

        launcher = config.hydra.launcher
        try:
            check_launcher(launcher, config.hydra.runtime.choices.get("hydra/launcher"))
            configs = job_configs(config)
            for cfg in configs:
                preflight(cfg)
                check_sharding(launcher, cfg.sweep.num_shards)
                if cfg.sweep.num_shards == 1:  # a cluster's job checks its own allocation when it starts
                    cpu_layout(cfg.train.threads, cfg.sweep.workers, usable_cores())
        except ConfigError as exc:
            _config_error(exc)
        if all(cfg.sweep.dry_run for cfg in configs):
            for cfg in configs:
                _run(cfg)
            sys.exit(0)  # the first callback: the later ones' starts (and the launcher) never run

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        fitted = set()
        try:
            for cfg in job_configs(config):
                if cfg.sweep.stage != "train" and not cfg.sweep.dry_run and cfg.sweep.dir not in fitted:
                    fitted.add(cfg.sweep.dir)
                    _run(replace(cfg, sweep=replace(cfg.sweep, stage="fit")))
        except Exception:  # Hydra would only warn about a callback's error; a failed fit fails the command
            traceback.print_exc()
            sys.exit(1)


def _config_error(exc: ConfigError) -> NoReturn:
    print(f"config error: {exc}", file=sys.stderr)
    sys.exit(2)


def _preset() -> str:
    """The sweep config group's choice (e.g. smoke), when Hydra composed this config; else ''."""
    try:
        return HydraConfig.get().runtime.choices.get("sweep") or ""
    except ValueError:  # not inside a Hydra job
        return ""


def _run(cfg: Config) -> None:
    """run_sweep as the command; an expected failure (Ctrl-C included) is one line on stderr and the exit
    status."""
    try:
        run_sweep(cfg, command=True)
    except ConfigError as exc:
        _config_error(exc)
    except store.WriteError as exc:  # disk full: stop, as every later run would fail the same way
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Interrupted as exc:
        print(exc, file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:  # before the plan was made
        print("interrupted before training started; rerun the same command to start", file=sys.stderr)
        sys.exit(130)


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def _hydra_main(dcfg) -> None:
    cfg: Config = OmegaConf.to_object(dcfg)
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:  # a job only trains its shard; FitAfterJobs fits after all
        if cfg.sweep.stage == "fit":
            return
        cfg = replace(cfg, sweep=replace(cfg.sweep, stage="train"))
    else:  # FitAfterJobs checked a multirun's launcher and shards
        try:
            check_launcher(None, hydra_cfg.runtime.choices.get("hydra/launcher"))
            check_sharding(None, cfg.sweep.num_shards)
        except ConfigError as exc:
            _config_error(exc)
    _run(cfg)


def default_sweep(argv: list[str]) -> list[str]:
    """Append sweep=gpu when CUDA is present and neither a sweep nor an experiment was chosen (sweep=cpu
    is the default; the ingredient experiments are CPU-sized and set their own sizes)."""
    if any(a.startswith(("sweep=", "+sweep=", "experiment=", "+experiment=")) for a in argv):
        return argv
    import torch

    return [*argv, "sweep=gpu"] if torch.cuda.is_available() else argv


def main() -> None:
    register_configs()
    argv = sys.argv[1:]
    try:
        check_overrides(argv, Path(__file__).parent.parent / "configs", path_key="sweep.dir")
    except ConfigError as exc:
        _config_error(exc)
    sys.argv = [sys.argv[0], *default_sweep(argv)]
    try:
        _hydra_main()
    except KeyboardInterrupt:  # while Hydra composes, before _run
        print("interrupted before training started; rerun the same command to start", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
