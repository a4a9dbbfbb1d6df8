"""The device check: what this GPU, or in a smaller version this CPU, does with the harness, inside a budget.

    scripts/gpu_check.sh                          # installs through the offline path when needed, then this
    python scripts/gpu_check.py                   # cuda when present, else the CPU version
    python scripts/gpu_check.py --device=cpu --sizes=1 --pack=1,2    # the quick CPU run the tests make

Prints `section key=value ...` lines (values with spaces are quoted), each as soon as it is measured:
  check  mode (gpu, or cpu: smaller sizes, not a GPU figure), device, torch, python, load; then `peak`:
         the datasheet peak and the matmul peak measured here (bf16 on a GPU; fp32 on one thread on a CPU)
  smoke  a small sweep end to end in a fresh process (`python -m harness.sweep sweep=gpu_smoke
         train.device=cuda`; on a CPU sweep=smoke): wall_s, runs done of planned, the fit's verdict
  size   the ladder's smallest, middle and largest widths (gpu: 144, 352, 752; cpu: the cpu preset's),
         compile off and on: tokens/s of the harness's own training step once warm (the second of two
         eval intervals), MFU against the measured peak and the datasheet's, warmup_s (the first
         interval's extra seconds: compilation), peak memory (GPU: allocated by torch; CPU: peak RSS)
  mfu    where the measured MFU per size was written (`--mfu-file`, default <data.cache_dir>/
         measured_mfu.json): the sweep's estimate reads it for this device (harness.estimate)
  data   the smallest width: ms to make one batch on the training device, and the share of a training
         step spent waiting for data (1 - tokens/s with real batches / tokens/s with one batch repeated)
  pack   1, 2 and 4 runs of the smallest size at once, each its own process, compile off: summed
         tokens/s and the gain over one; then `planned_runs`, how many the sweep's executor would pack
  skipped  the steps the budget left no time for, in one line
  done   wall_s of the whole check
The check cannot hang: every measurement runs in a process of its own with a timeout (at most what is
left of --budget-s, default 480 s); a measurement that fails (out of memory, a compile error, a timeout,
a process that died) is one `error=` line and the check goes on; a step that would not fit in the time
left is skipped. Options: --device --budget-s --steps --sizes --compile=off,on --pack=1,2,4
--skip=smoke,size,data,pack --smoke-dir=DIR (keep the smoke sweep there) --mfu-file=PATH.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # the budget counts from here: importing torch can take a while on a busy node

import multiprocessing  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import queue  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness import store  # noqa: E402
from harness.config import Config, register_configs  # noqa: E402
from harness.data import TokenSource, make_source  # noqa: E402
from harness.data.synthetic import CHUNK_SEQS, DEVICE_CHUNKS  # noqa: E402
from harness.device import Device, cuda_missing, resolve_device, usable_cores  # noqa: E402
from harness.estimate import MEASURED_MFU_FILE, record_measured_mfu  # noqa: E402
from harness.execute import device_slots, plan_tasks  # noqa: E402
from harness.flops import peak_flops  # noqa: E402
from harness.peak import matmul_peak_flops  # noqa: E402
from harness.plan import RunSpec, plan_runs  # noqa: E402
from harness.tracking.wandb_run import NullLogger  # noqa: E402
from harness.train import train_run  # noqa: E402


@dataclass(frozen=True)
class Mode:
    """What the check measures on one kind of device, and how long each step may take at most."""

    name: str  # gpu | cpu
    preset: str  # the sweep preset whose shapes and batch are measured
    steps: int  # steps per eval interval (two intervals per measurement)
    smoke: tuple[str, ...]  # `python -m harness.sweep` arguments of the end-to-end sweep
    smoke_s: float  # the smoke sweep's timeout
    step_s: float  # any other measurement's timeout


GPU = Mode("gpu", "gpu", 100, ("sweep=gpu_smoke", "train.device=cuda"), smoke_s=240, step_s=180)
CPU = Mode("cpu", "cpu", 20, ("sweep=smoke", "train.device=cpu", "train.threads=1"), smoke_s=180, step_s=120)
PACK_STEPS = 5  # packed runs train this many times a size measurement's steps
MIN_STEP_S = 20  # a measurement starts only with this much of the budget left
STOP_S = 5  # a process past its timeout is terminated, then killed after this long


class StepFailed(Exception):
    """A measurement that did not finish: its reason, in one line."""


def line(section: str, **fields: object) -> None:
    """One `section key=value ...` line; floats to 4 significant digits, strings with spaces quoted."""

    def text(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return f'"{v}"' if isinstance(v, str) and (" " in v or not v) else str(v)

    print(section, " ".join(f"{k}={text(v)}" for k, v in fields.items()), flush=True)


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type, its first line and (a compiler's long error) its last."""
    rows = [r.strip() for r in str(exc).splitlines() if r.strip()]
    text = type(exc).__name__ + (f": {rows[0]}" if rows else "")
    if len(rows) > 1:
        text += f" ... {rows[-1]}"
    return text.replace('"', "'")[:300]


# --- measurements in processes of their own


def _child(fn: Callable, args: tuple, results) -> None:
    """Run fn(*args) and put ("ok", its result) or ("error", why) on `results`."""
    try:
        results.put(("ok", fn(*args)))
    except BaseException as exc:  # any failure of a measurement is one line in the parent
        results.put(("error", one_line(exc)))


def _stop(procs: list) -> None:
    """Terminate the processes still running, then kill what is left after STOP_S; reap them all."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + STOP_S
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(STOP_S)


def collect(results, procs: list, n: int, deadline: float) -> list:
    """n results from `procs` by `deadline` (time.monotonic); StepFailed naming the first error, a
    process that died without answering, or the timeout. The processes are stopped in every case."""
    timeout = deadline - time.monotonic()
    out = []
    try:
        while len(out) < n:
            try:
                kind, value = results.get(timeout=max(0.05, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise StepFailed(f"a process died (exit code {dead[0]})") from None
                if time.monotonic() > deadline:
                    raise StepFailed(f"timeout after {timeout:.0f} s of waiting") from None
                continue
            if kind == "error":
                raise StepFailed(value)
            out.append(value)
    finally:
        _stop(procs)
    return out


def in_child(fn: Callable, args: tuple, timeout: float) -> object:
    """fn(*args) in a process of its own (spawned: a GPU's CUDA state is not forked), within `timeout`."""
    deadline = time.monotonic() + timeout  # starting counts: a spawned child takes its pickle as it imports
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, results), daemon=True)
    proc.start()
    return collect(results, [proc], 1, deadline)[0]


# --- what is measured


def compose_mode(mode: Mode, device: str) -> Config:
    """The preset's config, trained on `device` with two evals per run on a small validation set."""
    register_configs()
    overrides = [f"sweep={mode.preset}", "logger=off", f"train.device={device}", "train.evals=2"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg: Config = OmegaConf.to_object(compose(config_name="config", overrides=overrides))
    return replace(cfg, data=replace(cfg.data, val_tokens=8 * cfg.data.seq_len))


def measure_spec(cfg: Config, width: int, steps: int, source: TokenSource, precision: str) -> RunSpec:
    """The preset's run at `width` trained for 2 x `steps` steps (a grid run: same shape, batch, LR)."""
    tokens = 2 * steps * cfg.train.batch_size * cfg.data.seq_len
    grid = replace(
        cfg, sweep=replace(cfg.sweep, design="grid", widths=[width], tokens=[tokens], branches=False)
    )
    plan = dict(vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision=precision)
    (spec,) = plan_runs(grid, **plan)
    return spec


def steady_throughput(spec: RunSpec, source: TokenSource, dev: Device) -> tuple[float, float]:
    """(tokens/s of the second eval interval, extra seconds of the first: compile and warm-up)."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        result = train_run(spec, source, Path(tmp), NullLogger(), dev)
        rows = store.read_metrics(Path(tmp))
    tps = rows[-1]["perf/tokens_per_s"]
    warm = max(0.0, result["wall_s"] - spec.tokens / tps) if len(rows) == 2 else 0.0
    return tps, warm


class OneBatch:
    """The source with every training batch its first: a training step that never waits for data."""

    def __init__(self, source: TokenSource) -> None:
        self._source, self._made = source, {}

    def __getattr__(self, name: str):
        return getattr(self._source, name)

    def train_batch(self, step: int, batch_size: int, seed: int):
        key = ("host", batch_size, seed)
        self._made.setdefault(key, self._source.train_batch(0, batch_size, seed))
        return self._made[key]

    def device_batch(self, step: int, batch_size: int, seed: int, device: torch.device):
        key = (str(device), batch_size, seed)
        self._made.setdefault(key, self._source.device_batch(0, batch_size, seed, device))
        return self._made[key]


def data_wait(spec: RunSpec, source: TokenSource, dev: Device, batches: int) -> dict:
    """ms to make one of `batches` consecutive batches on the training device (`Device.batches`); whether
    they are the host's tokens (first, last and one past them: a GPU walks its own); and the share of a
    training step spent waiting for data: 1 - tokens/s with the source's batches over tokens/s with its
    first batch repeated (both steady, `steady_throughput`; near 0 when batches keep up)."""
    one_thread(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    make = dev.batches(source, spec.batch_size, spec.train.seed)
    sync()
    t0 = time.perf_counter()
    for step in range(batches):
        make(step)
    sync()
    batch_s = (time.perf_counter() - t0) / batches
    seed = spec.train.seed
    same = all(
        torch.equal(make(step)[0].cpu(), torch.from_numpy(source.train_batch(step, spec.batch_size, seed)[0]))
        for step in (0, batches - 1, batches)
    )
    real, _ = steady_throughput(spec, source, dev)
    fixed, _ = steady_throughput(spec, OneBatch(source), dev)
    return {
        "batch_ms": 1e3 * batch_s,
        "same_as_host": int(same),
        "tokens_per_s": real,
        "wait_share": 1 - real / fixed,
    }


def one_thread(dev: Device) -> None:
    """On a cpu, one torch thread: what each process of a sweep has."""
    if dev.type == "cpu":
        torch.set_num_threads(1)


def measure_size(spec: RunSpec, source: TokenSource, dev: Device) -> dict:
    """Steady tokens/s, warm-up seconds and peak memory of `spec` trained on `dev`."""
    one_thread(dev)
    tps, warm = steady_throughput(spec, source, dev)
    return {"tokens_per_s": tps, "warmup_s": warm, "peak_mem_mb": peak_memory_mb(dev)}


def measure_peak(cuda: bool) -> float:
    """The matmul peak here: bf16 on a GPU, fp32 on one CPU thread."""
    if cuda:
        return matmul_peak_flops("cuda", dtype=torch.bfloat16, sizes=(4096, 8192), reps=20)
    torch.set_num_threads(1)
    return matmul_peak_flops()


def pack_worker(spec: RunSpec, source: TokenSource, dev: Device, barrier, wait_s: float) -> float:
    """One of several runs packed on the device: steady tokens/s, started with the others."""
    one_thread(dev)
    try:  # every run starts training at once; a sibling that died or is late breaks the barrier
        barrier.wait(timeout=wait_s)
    except threading.BrokenBarrierError:
        raise RuntimeError(
            f"the {barrier.parties} packed runs did not all start within {wait_s:.0f} s"
        ) from None
    return steady_throughput(spec, source, dev)[0]


def pack_throughput(spec: RunSpec, source: TokenSource, dev: Device, runs: int, timeout: float) -> float:
    """Summed steady tokens/s of `runs` copies of `spec` training at once on the device, each in its own
    process (sharing one GPU, or one core each on a CPU), as the sweep's executor runs them."""
    deadline = time.monotonic() + timeout
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(runs), ctx.Queue()
    args = (pack_worker, (spec, source, dev, barrier, timeout), results)
    procs = [ctx.Process(target=_child, args=args, daemon=True) for _ in range(runs)]
    for p in procs:
        p.start()
    return sum(collect(results, procs, runs, deadline))


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    for row in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if row.startswith("model name"):
            return row.split(":", 1)[1].strip()
    return platform.machine()


def peak_memory_mb(dev: Device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20  # a fresh process: its peak is this run's
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def ladder_sizes(cfg: Config) -> list[int]:
    """The preset ladder's smallest, middle and largest widths."""
    ladder = sorted(cfg.sweep.widths)
    return [ladder[0], ladder[len(ladder) // 2], ladder[-1]]


def planned_runs(cfg: Config, spec: RunSpec, dev: Device) -> int:
    """Runs of `spec` the sweep's executor packs on one device (harness.execute.device_slots)."""
    slots = device_slots(cfg, plan_tasks([spec]), dev, usable_cores())
    return next(iter(slots.values()))[0]


def run_smoke(mode: Mode, timeout: float, keep: Path | None) -> None:
    """The smoke sweep in a fresh process, as a user runs it: wall time, runs done, the fit's verdict.
    Its whole process group is killed at `timeout` (the sweep's own workers too)."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_smoke_") as tmp:
        where = keep or Path(tmp, "sweep")
        argv = [sys.executable, "-m", "harness.sweep", *mode.smoke, "logger=off", f"sweep.dir={where}"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            err = None
        wall = time.perf_counter() - t0
        fit = store.read_json(where / store.FIT_JSON) or {}
        rows = store.read_results_table(where) if (where / store.RESULTS_CSV).exists() else []
    finished = sum(r["status"] == "done" for r in rows)
    verdict = fit.get("verdict", {}).get("outcome", "none")  # yes | no | untested; none: no fit
    preset = mode.smoke[0].split("=")[1]
    fields = dict(preset=preset, wall_s=wall, runs=f"{finished}/{len(rows)}", verdict=verdict)
    if err is None:
        line("smoke", **fields, error=f"timeout after {timeout:.0f} s: killed")
    elif proc.returncode != 0:
        line("smoke", **fields, rc=proc.returncode, error=(err.strip().splitlines() or ["?"])[-1])
    else:
        line("smoke", **fields, rc=0)


# --- the check


@dataclass
class Budget:
    """The check's time: what is left, and the steps it had no time for."""

    seconds: float
    start: float
    skipped: list[str]

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)

    def allows(self, label: str) -> bool:
        """Whether a measurement may start now; if not, it is noted as skipped."""
        if self.left() >= MIN_STEP_S:
            return True
        self.skipped.append(label)
        return False

    def timeout(self, cap: float) -> float:
        """A measurement's timeout: its cap, or what is left less the time to stop it."""
        return max(1.0, min(cap, self.left() - 2 * STOP_S))


def main(argv: list[str], started: float | None = None) -> None:
    """The check; its budget counts from `started` (time.perf_counter; None: now)."""
    args = dict(a.removeprefix("--").split("=", 1) for a in argv)
    budget = Budget(float(args.get("budget-s", 480)), started or time.perf_counter(), [])
    device = args.get("device", "auto")
    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if cuda and (why := cuda_missing()):
        line("check", error=f"--device=cuda: {why}")
        raise SystemExit(2)
    mode = GPU if cuda else CPU
    if "steps" in args:
        mode = replace(mode, steps=int(args["steps"]))
    sizes = int(args.get("sizes", 3))
    compiles = [c == "on" for c in args.get("compile", "off,on").split(",")]
    packs = [int(k) for k in args.get("pack", "1,2,4").split(",") if k]
    skip = set(args.get("skip", "").split(","))

    cfg = compose_mode(mode, "cuda" if cuda else "cpu")
    dev = resolve_device(cfg.train, threads=1)
    source = make_source(cfg.data)
    name = torch.cuda.get_device_name() if cuda else cpu_name()
    line("check", mode=mode.name, device=name, torch=torch.__version__, python=platform.python_version(),
         load=os.getloadavg()[0])  # fmt: skip
    if not cuda:
        line("check", note="no GPU: smaller sizes on one CPU thread; these are not GPU figures")
    datasheet = peak_flops(name) if cuda else None
    try:
        measured = in_child(measure_peak, (cuda,), budget.timeout(mode.step_s))
    except StepFailed as exc:
        line("peak", error=str(exc))
        measured = None
    line("peak", tflops_datasheet=datasheet / 1e12 if datasheet else "none",
         tflops_measured=measured / 1e12 if measured else "none")  # fmt: skip

    if "smoke" not in skip and budget.allows("smoke"):
        run_smoke(
            mode, budget.timeout(mode.smoke_s), Path(args["smoke-dir"]) if "smoke-dir" in args else None
        )

    points = []  # (non-embedding params, MFU against the measured peak) at the preset's compile setting
    for width in ladder_sizes(cfg)[:sizes] if "size" not in skip else []:
        spec = measure_spec(cfg, width, mode.steps, source, dev.precision)
        for compiled in compiles:
            label = dict(width=width, compile=int(compiled))
            if not budget.allows(f"size width={width} compile={int(compiled)}"):
                continue
            about = dict(depth=spec.shape.depth, params=spec.params.total,
                         params_nonembedding=spec.params.nonembedding)  # fmt: skip
            try:
                got = in_child(
                    measure_size, (spec, source, replace(dev, compile=compiled)), budget.timeout(mode.step_s)
                )
            except StepFailed as exc:
                line("size", **label, **about, error=str(exc))
                continue
            achieved = got["tokens_per_s"] * spec.flops_per_token
            mfu = {"mfu_measured": achieved / measured if measured else "none",
                   "mfu_datasheet": achieved / datasheet if datasheet else "none"}  # fmt: skip
            line("size", **label, **about, tokens_per_s=got["tokens_per_s"], **mfu, warmup_s=got["warmup_s"],
                 peak_mem_mb=got["peak_mem_mb"])  # fmt: skip
            if measured and compiled == cfg.train.compile:
                points.append((spec.params.nonembedding, achieved / measured))
    if points:
        path = Path(args.get("mfu-file", Path(cfg.data.cache_dir) / MEASURED_MFU_FILE))
        device_key = name if cuda else "cpu"  # the names harness.console's estimate looks up
        record_measured_mfu(path, device_key, measured, points, f"scripts/gpu_check.py on {date.today()}")
        line("mfu", file=str(path), device=device_key, sizes=len(points), compile=int(cfg.train.compile))

    smallest = measure_spec(cfg, ladder_sizes(cfg)[0], mode.steps, source, dev.precision)
    if "data" not in skip and budget.allows("data"):
        per_walk = DEVICE_CHUNKS * CHUNK_SEQS // smallest.batch_size  # batches in one device walk
        try:
            got = in_child(data_wait, (smallest, source, dev, per_walk), budget.timeout(mode.step_s))
            line("data", width=smallest.shape.width, batch=f"{smallest.batch_size}x{cfg.data.seq_len}", **got)
        except StepFailed as exc:
            line("data", width=smallest.shape.width, error=str(exc))

    # longer runs, so the runs' measured intervals overlap; no compile: each process would compile its own
    spec = measure_spec(cfg, ladder_sizes(cfg)[0], PACK_STEPS * mode.steps, source, dev.precision)
    first = None  # tokens/s per run of the first packing measured (one run alone, by default)
    for runs in packs if "pack" not in skip else []:
        if not budget.allows(f"pack runs={runs}"):
            continue
        try:
            tps = pack_throughput(
                spec, source, replace(dev, compile=False), runs, budget.timeout(mode.step_s)
            )
        except StepFailed as exc:
            line("pack", runs=runs, width=spec.shape.width, error=str(exc))
            continue
        first = first or tps / runs
        line("pack", runs=runs, width=spec.shape.width, tokens_per_s=tps, gain=tps / first)
    line("pack", width=spec.shape.width, planned_runs=planned_runs(cfg, spec, dev))
    if budget.skipped:
        line("skipped", steps=", ".join(budget.skipped), why=f"under {MIN_STEP_S} s of the budget left")
    line("done", wall_s=time.perf_counter() - budget.start, budget_s=budget.seconds)


if __name__ == "__main__":
    main(sys.argv[1:], started=STARTED)
