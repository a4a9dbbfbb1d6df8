"""Train a sweep's planned runs on this machine, several at once: the one local scheduler.

On cpu each run trains in a process of its own with `train.threads` torch threads (1 by default), as
many at once as the usable cores allow (`sweep.workers`; harness.device.cpu_layout splits the cores):
the models are too small for a second thread to pay, and a one-thread process keeps its speed when
other work shares the machine. On cuda several small runs share each GPU, as many as their memory and
size allow (`runs_per_device`). A size's WSD main run and its branches are one task, trained in order
by one process; tasks start largest first, so the longest does not end up last. With one process
(or one task) the runs train in this process.

This is the executor for one machine: the standard library's ProcessPoolExecutor (forkserver) and no
queue or retry of our own; a cluster's jobs (Hydra's submitit launcher, `-m hydra/launcher=slurm`)
each run this on their own allocation. The sweep's guarantees hold in every process: a run is finished
exactly when its result.json exists (written last, atomically) and trains only under its lock
(store.try_lock), so two sweeps on one directory never train the same run. A failure in a process
stops the others and is raised here; Ctrl-C stops them all (they ignore SIGINT; this process
terminates them), and if this process is killed they exit too (`_exit_with`), so no process outlives
the sweep.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from harness import store
from harness.config import Config
from harness.data import TokenSource, epochs_over, make_source
from harness.device import Device, resolve_device, usable_cores
from harness.plan import RunSpec, run_groups, training_order
from harness.progress import RunProgress
from harness.tracking import RunLogger

# Assumptions for packing runs on a GPU, until scripts/gpu_check.sh measures them (issue 17):
CUDA_PROCESS_BYTES = 2**30  # a process's own GPU memory: CUDA context, kernels, allocator slack
CUDA_HOST_STEP_S = 2e-3  # host time to launch a small model's step: a run whose step takes less
# at the device's peak leaves it idle, so others may share it
CUDA_MAX_RUNS = 8  # processes per GPU at most, whatever the runs' size
CUDA_UNKNOWN_PEAK = 100e12  # FLOP/s assumed for a GPU missing from harness.flops.PEAK_FLOPS
CPU_PROCESS_BYTES = 700 * 2**20  # resident memory of a training process (torch + transformers), measured
MEMORY_SHARE = 0.8  # of a device's (or the host's available) memory that packed runs may fill


@dataclass(frozen=True)
class Capacity:
    """What one device offers the runs packed on it."""

    memory_bytes: int  # memory the runs may fill
    process_bytes: int  # each process's own overhead in that memory
    fill_flops: float  # FLOPs per step with which one run keeps the device busy (inf: never shared for speed)
    max_runs: int  # processes at once at most


def run_memory_bytes(spec: RunSpec) -> int:
    """Memory a run trains in: fp32 weights, gradients and AdamW's two moments (16 bytes per
    parameter), the activations the backward keeps, 34 x width bytes per token per layer in 16-bit
    (Korthikanti et al. 2022, eq. 2, without the attention-matrix term that sdpa does not keep),
    twice that in fp32, and the logits (fp32 logits, log-softmax and gradient: 12 x vocab bytes per
    token). An estimate for packing, not a measurement (an lstm's activations are counted alike)."""
    shape = spec.shape
    tokens = spec.batch_size * shape.seq_len
    act_bytes = 1 if spec.precision == "bf16" else 2
    activations = tokens * shape.depth * 34 * shape.width * act_bytes
    return 16 * spec.params.total + activations + 12 * tokens * shape.vocab_size


def runs_per_device(memory_bytes: int, flops_per_step: float, device: Capacity) -> int:
    """How many runs of this size share one device at once: as many as fit in its memory (each in its
    own process), no more than fill it (a run whose step alone needs `device.fill_flops` gets it
    alone), at most `device.max_runs`, and at least one."""
    by_memory = device.memory_bytes // (memory_bytes + device.process_bytes)
    runs = min(by_memory, device.max_runs)
    if flops_per_step * runs > device.fill_flops:
        runs = math.floor(device.fill_flops / flops_per_step)
    return max(1, runs)


def cpu_capacity(workers: int) -> Capacity:
    """The host as one device for `workers` one-core processes: its available memory, never shared
    for speed (a process per core is the packing)."""
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return Capacity(int(MEMORY_SHARE * available), CPU_PROCESS_BYTES, math.inf, workers)


def cuda_capacity(index: int, max_runs: int, peak: float | None) -> Capacity:
    """GPU `index`: its memory, filled by a run whose step at `peak` FLOP/s outlasts the host's
    launch time (see the assumptions above)."""
    import torch

    total = torch.cuda.get_device_properties(index).total_memory
    fill = (peak or CUDA_UNKNOWN_PEAK) * CUDA_HOST_STEP_S
    return Capacity(int(MEMORY_SHARE * total), CUDA_PROCESS_BYTES, fill, max_runs)


@dataclass(frozen=True)
class Task:
    """Runs one process trains in order: a single run, or a WSD main run and its branches."""

    specs: tuple[RunSpec, ...]
    prefixes: tuple[str, ...]  # each run's place in the sweep, for its progress: "[i/n] "

    @property
    def flops(self) -> float:
        return sum(s.flops_spent for s in self.specs)


def plan_tasks(specs: list[RunSpec], where: str = "") -> list[Task]:
    """The runs as tasks (`run_groups`), largest first (a branch's main run first within its task);
    `where` prefixes their progress labels (a cluster job's shard)."""
    order = training_order(specs)
    prefixes = {s.run_id: f"{where}[{i}/{len(order)}] " for i, s in enumerate(order, 1)}
    groups = [training_order(group) for group in run_groups(specs)]
    tasks = [Task(tuple(g), tuple(prefixes[s.run_id] for s in g)) for g in groups]
    return sorted(tasks, key=lambda t: -t.flops)


def train_planned(
    cfg: Config, specs: list[RunSpec], sweep_dir: Path, *, done: set[str], source: TokenSource, dev: Device,
    workers: int, threads: int, open_run: Callable[..., RunLogger],
) -> None:  # fmt: skip
    """Train every run of `specs` not in `done` (the run ids the start screen counted finished): up to
    `workers` processes at once on cpu (each with `threads` torch threads), packed per GPU on cuda; in
    this process when one would do. `open_run(cfg.logger, **run)` opens each run's logger
    (harness.tracking.open_run with the sweep's W&B group; picklable)."""
    store.release_forks(sweep_dir, specs)  # fork states left by a kill just after their last branch
    where = f"shard {cfg.sweep.shard + 1}/{cfg.sweep.num_shards} " if cfg.sweep.num_shards > 1 else ""
    tasks = plan_tasks([s for s in specs if s.run_id not in done], where)
    slots = device_slots(cfg, tasks, dev, workers)
    processes = min(len(tasks), sum(max(per, default=1) for per in slots.values()))
    if processes <= 1:
        trainer = Trainer(cfg, sweep_dir, source, dev, open_run)
        for task in tasks:
            trainer.train(task)
        return
    if dev.type == "cuda":
        threads = cfg.train.threads or max(1, usable_cores() // processes)
    on = "the cpu" if dev.type == "cpu" else f"{len(slots)} GPU{'s' * (len(slots) > 1)}"
    each = f"{threads} torch thread{'s' * (threads > 1)} each"
    progress(cfg, f"{where}training up to {processes} runs at once on {on}, {each}")
    _run_pool(cfg, sweep_dir, tasks, slots, threads, open_run)


def device_slots(cfg: Config, tasks: list[Task], dev: Device, workers: int) -> dict[int | None, list[int]]:
    """For each device (None: the cpu; else a GPU index), how many runs of each task's size may share
    it (`runs_per_device`): on cpu `workers` at most; on cuda `sweep.workers` (0: CUDA_MAX_RUNS) and the
    cores per GPU at most. A multirun's job keeps to its own GPU (harness.launch.place_on_gpu); a
    single process takes them all."""
    if dev.type == "cpu":
        devices = {None: cpu_capacity(workers)}
    else:
        import torch

        count = torch.cuda.device_count()
        gpus = [torch.cuda.current_device()] if cfg.sweep.num_shards > 1 else list(range(count))
        cap = min(usable_cores() // len(gpus), cfg.sweep.workers or CUDA_MAX_RUNS)
        devices = {i: cuda_capacity(i, max(1, cap), dev.peak_flops) for i in gpus}
    return {
        index: [runs_per_device(_task_memory(t), _task_step_flops(t), capacity) for t in tasks]
        for index, capacity in devices.items()
    }


def _task_memory(task: Task) -> int:
    return max(run_memory_bytes(s) for s in task.specs)


def _task_step_flops(task: Task) -> float:
    spec = task.specs[0]  # one size per task
    return spec.flops_per_token * spec.batch_size * spec.shape.seq_len


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads(threads: int) -> None:
    """Give numpy's BLAS in the workers as many threads as torch (unless the user set them): it starts one
    per core in every process, and on a busy machine they spin (the synthetic source's questions took 107 s
    with 2 BLAS threads per worker, 9.6 s with 1). Set in this process's environment, which the forkserver
    takes when it starts and imports numpy."""
    for var in BLAS_THREADS:
        os.environ.setdefault(var, str(threads))


def _run_pool(
    cfg: Config, sweep_dir: Path, tasks: list[Task], slots: dict, threads: int, open_run: Callable
) -> None:
    """Run the tasks in process pools, one per device, admitting a task where the device's share left
    (1 - the sum of 1/slots of its running tasks) holds it; raise the first failure. Each running task
    gets its own line for its progress bar."""
    context = _context()
    limit_blas_threads(threads)
    pools = {
        index: ProcessPoolExecutor(
            max_workers=min(len(tasks), max(per)),
            mp_context=context,
            initializer=_start_worker,
            initargs=(cfg, sweep_dir, threads, index, open_run, os.getpid(), dict(os.environ)),
        )
        for index, per in slots.items()
    }
    load = dict.fromkeys(pools, 0.0)
    running: dict[Future, tuple[int | None, float, int]] = {}
    lines = set(range(sum(max(per) for per in slots.values())))  # progress-bar positions free
    pending = list(range(len(tasks)))
    try:
        while pending or running:
            for i in list(pending):
                index = min(load, key=load.get)
                share = 1 / slots[index][i]
                if load[index] + share > 1 + 1e-9:
                    continue
                load[index] += share
                line = min(lines)
                lines.remove(line)
                running[pools[index].submit(_train_task, tasks[i], line)] = (index, share, line)
                pending.remove(i)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index, share, line = running.pop(future)
                load[index] -= share
                lines.add(line)
                future.result()  # a failure stops the sweep
    except BaseException:
        _stop(pools.values())
        raise
    for pool in pools.values():
        pool.shutdown()


def _context() -> multiprocessing.context.BaseContext:
    """Forkserver: one server process imports torch, transformers and the trainer once and forks every
    worker from it (spawn imports them in each worker: 3x slower to start on a loaded 2-core machine,
    and the server serves every later pool of this process at once). Spawn where there is none."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["harness.train", "harness.tracking"])
    return context


def _stop(pools) -> None:
    """Terminate every worker now (SIGTERM: a run it was training stays unfinished, its lock freed)."""
    for pool in pools:
        for process in list(pool._processes.values()):  # Python 3.14: pool.terminate_workers()
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


class Trainer:
    """What a training process holds for every run it trains: the config, the data source, the device,
    the logger opener."""

    def __init__(
        self,
        cfg: Config,
        sweep_dir: Path,
        source: TokenSource,
        dev: Device,
        open_run: Callable[..., RunLogger],
    ) -> None:
        from harness.train import train_run

        self.cfg, self.sweep_dir, self.source, self.dev = cfg, sweep_dir, source, dev
        self._open_run, self._train_run = open_run, train_run

    def train(self, task: Task, line: int = 0) -> None:
        """The task's runs in order; `line`: the terminal line of their progress bars."""
        for spec, prefix in zip(task.specs, task.prefixes, strict=True):
            self.train_one(spec, prefix, task.specs, line)

    def train_one(self, spec: RunSpec, prefix: str, group: tuple[RunSpec, ...], line: int = 0) -> None:
        """Train `spec` unless finished, its main run unfinished, or another process holds its lock."""
        cfg, sweep_dir, source = self.cfg, self.sweep_dir, self.source
        path = store.run_dir(sweep_dir, spec.dirname)
        tag = f"{prefix}{spec.name:<22} {spec.run_id}"
        if store.read_result(path) is not None:  # the start screen counted it
            return
        if spec.parent is not None and store.read_result(path.with_name(spec.parent.dirname)) is None:
            progress(cfg, f"{tag} its main run {spec.parent.run_id} is not finished, skipped")
            return
        lock = store.try_lock(path)
        if lock is None:
            progress(cfg, f"{tag} being trained by another process, skipped")
            return
        try:
            if store.read_result(path) is not None:  # finished while we waited for the lock
                return
            resolved = {**spec.to_dict(), "compile": self.dev.compile, "device": self.dev.type}
            store.write_json(path / store.SPEC, resolved)
            config = {
                **resolved,
                "sweep": cfg.sweep.name,
                "data": cfg.data.source,
                "data_fingerprint": source.fingerprint,
                "epochs": epochs_over(source, spec.tokens),
            }
            logger = self._open_run(
                cfg.logger,
                sweep_dir=sweep_dir,
                run_id=spec.run_id,
                name=spec.name,
                job_type="train",
                config=config,
            )
            exit_code, result = 1, None
            bar = RunProgress(prefix + spec.name, spec.steps, position=line) if cfg.sweep.progress else None
            try:
                result = self._train_run(spec, source, path, logger, self.dev, bar)
                exit_code = 0 if result["status"] == "done" else 1
            finally:
                if bar is not None:
                    bar.close()
                logger.finish(summary=result, exit_code=exit_code)
            store.write_json(path / store.RESULT, result)
            (path / store.CHECKPOINT).unlink(missing_ok=True)
            store.release_forks(sweep_dir, group)
            outcome = (
                f"val_loss={result['val_loss']:.4f}"
                if result["status"] == "done"
                else f"DIVERGED at step {result['diverged_step']}"
            )
            speed = f"{result['wall_s']:.1f}s  {result['tokens_per_s'] or 0:,.0f} tok/s"
            progress(cfg, f"{tag} {outcome}  {speed}")
        finally:
            lock.release()


def progress(cfg: Config, line: str) -> None:
    if cfg.sweep.progress:
        print(time.strftime("%H:%M:%S"), line, flush=True)


_WORKER: Trainer | None = None  # the trainer of a pool's worker process


def _start_worker(
    cfg: Config, sweep_dir: Path, threads: int, gpu: int | None, open_run: Callable, sweep: int, env: dict
) -> None:
    """Set up a pool's worker process: exit with the sweep's process, leave Ctrl-C to it, take its
    environment (the forkserver's may be older), build the trainer."""
    global _WORKER
    _exit_with(sweep)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(env)
    if gpu is not None:
        import torch

        torch.cuda.set_device(gpu)
    _WORKER = Trainer(cfg, sweep_dir, make_source(cfg.data), resolve_device(cfg.train, threads), open_run)


def _exit_with(pid: int) -> None:
    """End this process as soon as process `pid` ends, however it ends (killed too): a thread waits on
    its pidfd (Linux >= 5.3), or polls it every second. A worker's parent is the forkserver, which
    lives as long as any worker does, so the kernel's parent-death signal cannot do this."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd here
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            with contextlib.suppress(ProcessLookupError):
                while True:
                    os.kill(pid, 0)
                    time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-sweep", daemon=True).start()


def _train_task(task: Task, line: int) -> None:
    _WORKER.train(task, line)
