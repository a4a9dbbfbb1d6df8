"""The device check (issue 17.5): what this GPU, or in a smaller version this CPU, does with the harness.

    scripts/gpu_check.sh                          # installs through the offline path when needed, then this
    python scripts/gpu_check.py                   # cuda when present, else the CPU version
    python scripts/gpu_check.py --device=cpu --sizes=1 --pack=1,2    # the quick CPU run the tests make

Prints `section key=value ...` lines (values with spaces are quoted):
  check  mode (gpu, or cpu: smaller sizes, not a GPU figure), device, torch, python, the datasheet peak and
         the matmul peak measured here (bf16 on a GPU; fp32 on one thread on a CPU, the MFU's reference there)
  smoke  a small sweep end to end in a fresh process (`python -m harness.sweep sweep=gpu_smoke`; on a CPU
         sweep=smoke): wall_s, runs done of planned, the fit's verdict
  size   the ladder's smallest, middle and largest widths (gpu: 144, 352, 752, the gpu preset's 1.0M, 13M and
         129M params; cpu: the cpu preset's), compile off and on: tokens/s and MFU of the harness's own
         training step once warm (the second of two eval intervals), warmup_s (the first interval's extra
         seconds: compilation), peak memory (GPU: allocated by torch; CPU: the process's peak RSS so far)
  pack   1, 2 and 4 runs of the smallest size at once on the device, each its own process, compile off:
         summed tokens/s and the gain over one; then `planned_runs`, how many the sweep's executor
         would pack on one device (harness.execute.device_slots), to check against the gains
  done   wall_s of the whole check
Each part runs only if the time left of --budget-s (default 480: the 8 minutes of a device slot) allows it;
otherwise it prints `skipped=<why>`.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness import store  # noqa: E402
from harness.config import Config, register_configs  # noqa: E402
from harness.data import make_source  # noqa: E402
from harness.device import Device, resolve_device, usable_cores  # noqa: E402
from harness.execute import device_slots, plan_tasks  # noqa: E402
from harness.flops import peak_flops  # noqa: E402
from harness.peak import matmul_peak_flops  # noqa: E402
from harness.plan import RunSpec, plan_runs  # noqa: E402
from harness.tracking.wandb_run import NullLogger  # noqa: E402
from harness.train import train_run  # noqa: E402


@dataclass(frozen=True)
class Mode:
    """What the check measures on one kind of device."""

    name: str  # gpu | cpu
    preset: str  # the sweep preset whose shapes and batch are measured
    steps: int  # steps per eval interval (two intervals per measurement)
    smoke: tuple[str, ...]  # `python -m harness.sweep` arguments of the end-to-end sweep


GPU = Mode("gpu", "gpu", 100, ("sweep=gpu_smoke", "train.device=cuda"))
CPU = Mode("cpu", "cpu", 20, ("sweep=smoke", "train.device=cpu", "train.threads=1"))
PACK_STEPS = 5  # packed runs train this many times a size measurement's steps


def line(section: str, **fields: object) -> None:
    """One `section key=value ...` line; floats to 4 significant digits, strings with spaces quoted."""

    def text(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return f'"{v}"' if isinstance(v, str) and (" " in v or not v) else str(v)

    print(section, " ".join(f"{k}={text(v)}" for k, v in fields.items()), flush=True)


def compose_mode(mode: Mode, device: str) -> Config:
    """The preset's config, trained on `device` with two evals per run on a small validation set."""
    register_configs()
    overrides = [f"sweep={mode.preset}", "logger=off", f"train.device={device}", "train.evals=2"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg: Config = OmegaConf.to_object(compose(config_name="config", overrides=overrides))
    return replace(cfg, data=replace(cfg.data, val_tokens=8 * cfg.data.seq_len))


def measure_spec(cfg: Config, width: int, steps: int, source, precision: str) -> RunSpec:
    """The preset's run at `width` trained for 2 x `steps` steps (a grid run: same shape, batch, LR)."""
    tokens = 2 * steps * cfg.train.batch_size * cfg.data.seq_len
    grid = replace(
        cfg, sweep=replace(cfg.sweep, design="grid", widths=[width], tokens=[tokens], branches=False)
    )
    plan = dict(vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision=precision)
    (spec,) = plan_runs(grid, **plan)
    return spec


def steady_throughput(spec: RunSpec, source, dev: Device) -> tuple[float, float]:
    """(tokens/s of the second eval interval, extra seconds of the first: compile and warm-up)."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        result = train_run(spec, source, Path(tmp), NullLogger(), dev)
        rows = store.read_metrics(Path(tmp))
    tps = rows[-1]["perf/tokens_per_s"]
    warm = max(0.0, result["wall_s"] - spec.tokens / tps) if len(rows) == 2 else 0.0
    return tps, warm


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    for row in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if row.startswith("model name"):
            return row.split(":", 1)[1].strip()
    return platform.machine()


def peak_memory_mb(dev: Device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def ladder_sizes(cfg: Config) -> list[int]:
    """The preset ladder's smallest, middle and largest widths."""
    ladder = sorted(cfg.sweep.widths)
    return [ladder[0], ladder[len(ladder) // 2], ladder[-1]]


def check_sizes(
    cfg: Config, mode: Mode, source, dev: Device, peak: float, sizes: int, compiles: list[bool]
) -> None:
    for width in ladder_sizes(cfg)[:sizes]:
        spec = measure_spec(cfg, width, mode.steps, source, dev.precision)
        for compiled in compiles:
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            tps, warm = steady_throughput(spec, source, replace(dev, compile=compiled))
            line(
                "size",
                width=width,
                depth=spec.shape.depth,
                params=spec.params.total,
                params_nonembedding=spec.params.nonembedding,  # what harness.estimate's MFU tables key on
                compile=int(compiled),
                tokens_per_s=float(tps),
                mfu=tps * spec.flops_per_token / peak,
                warmup_s=warm,
                peak_mem_mb=peak_memory_mb(dev),
            )


def _pack_worker(cfg: Config, spec: RunSpec, dev: Device, barrier, results) -> None:
    if dev.type == "cpu":
        torch.set_num_threads(1)
    source = make_source(cfg.data)
    barrier.wait()  # every run starts training at once
    results.put(steady_throughput(spec, source, dev)[0])


def pack_throughput(cfg: Config, spec: RunSpec, dev: Device, runs: int) -> float:
    """Summed steady tokens/s of `runs` copies of `spec` training at once on the device, each in its own
    process (the processes sharing one GPU, or one core each on a CPU), as the sweep's executor runs
    them; `planned_runs` (main) prints how many the executor would pack, to be checked against these."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(runs), ctx.Queue()
    procs = [ctx.Process(target=_pack_worker, args=(cfg, spec, dev, barrier, results)) for _ in range(runs)]
    for p in procs:
        p.start()
    total = sum(results.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
    return total


def planned_runs(cfg: Config, spec: RunSpec, dev: Device) -> int:
    """Runs of `spec` the sweep's executor packs on one device (harness.execute.device_slots)."""
    slots = device_slots(cfg, plan_tasks([spec]), dev, usable_cores())
    return next(iter(slots.values()))[0]


def check_smoke(mode: Mode, timeout: float) -> None:
    """The smoke sweep in a fresh process, as a user runs it: wall time, runs done, the fit's verdict."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_smoke_") as tmp:
        argv = [sys.executable, "-m", "harness.sweep", *mode.smoke, "logger=off", f"sweep.dir={tmp}/sweep"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
        t0 = time.perf_counter()
        done = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        fit = store.read_json(Path(tmp, "sweep", "fit.json")) or {}
        table = Path(tmp, "sweep", "results.csv")
        rows = store.read_results_table(table.parent) if table.exists() else []
    finished = sum(r["status"] == "done" for r in rows)
    verdict = fit.get("verdict", {}).get("outcome", "none")  # yes | no | untested; none: no fit
    preset = mode.smoke[0].split("=")[1]
    line(
        "smoke",
        preset=preset,
        rc=done.returncode,
        wall_s=wall,
        runs=f"{finished}/{len(rows)}",
        verdict=verdict,
    )
    if done.returncode != 0:
        line("smoke", error=(done.stderr.strip().splitlines() or ["?"])[-1])


def main(argv: list[str]) -> None:
    args = dict(a.removeprefix("--").split("=", 1) for a in argv)
    t_start = time.perf_counter()
    budget = float(args.get("budget-s", 480))
    device = args.get("device", "auto")
    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    mode = GPU if cuda else CPU
    if "steps" in args:
        mode = replace(mode, steps=int(args["steps"]))
    sizes = int(args.get("sizes", 3))
    compiles = [c == "on" for c in args.get("compile", "off,on").split(",")]
    packs = [int(k) for k in args.get("pack", "1,2,4").split(",") if k]

    cfg = compose_mode(mode, "cuda" if cuda else "cpu")
    dev = resolve_device(cfg.train, threads=1)
    source = make_source(cfg.data)
    if cuda:
        name = torch.cuda.get_device_name()
        measured = matmul_peak_flops("cuda", dtype=torch.bfloat16, sizes=(4096, 8192), reps=20)
        datasheet = peak_flops(name)
    else:
        name, measured, datasheet = cpu_name(), matmul_peak_flops(), None
    peak = datasheet or measured  # the MFU's reference
    line("check", mode=mode.name, device=name, torch=torch.__version__, python=platform.python_version(),
         peak_tflops_datasheet=datasheet / 1e12 if datasheet else "none",
         peak_tflops_measured=measured / 1e12, mfu_against="datasheet" if datasheet else "measured",
         load=os.getloadavg()[0])  # fmt: skip
    if not cuda:
        line("check", note="no GPU: smaller sizes on one CPU thread; these are not GPU figures")

    def left() -> float:
        return budget - (time.perf_counter() - t_start)

    if "smoke" not in args.get("skip", "").split(","):
        if left() > 60:
            check_smoke(mode, timeout=left())
        else:
            line("smoke", skipped="out of time")
    if left() > 30:
        check_sizes(cfg, mode, source, dev, peak, sizes, compiles)
    else:
        line("size", skipped="out of time")
    # longer runs, so the runs' measured intervals overlap; no compile: each process would compile its own
    spec = measure_spec(cfg, ladder_sizes(cfg)[0], PACK_STEPS * mode.steps, source, dev.precision)
    first = None  # tokens/s per run of the first packing measured (one run alone, by default)
    for runs in packs:
        if left() < 30:
            line("pack", runs=runs, skipped="out of time")
            continue
        tps = pack_throughput(cfg, spec, replace(dev, compile=False), runs)
        first = first or tps / runs
        line("pack", runs=runs, width=spec.shape.width, tokens_per_s=tps, gain=tps / first)
    line("pack", width=spec.shape.width, planned_runs=planned_runs(cfg, spec, dev))
    line("done", wall_s=time.perf_counter() - t_start)


if __name__ == "__main__":
    main(sys.argv[1:])
