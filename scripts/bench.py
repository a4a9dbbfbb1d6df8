"""Benchmark the training step on CPU per `cpu` size: the harness's loop against a bare PyTorch loop,
against the fp32 matmul peak measured in the same run, and (compile=1) torch.compile's speedup.

    .venv/bin/python scripts/bench.py                       # 1 torch thread: what each sweep process has
    .venv/bin/python scripts/bench.py steps=40 repeats=5 threads=2 compile=1

For every width of the `cpu` preset (smallest first, largest last) the same model, batch and AdamW
train 2 x `steps` steps, `repeats` times, alternately; each times its second `steps` steps (the first
warm up):
  harness  `harness.train.train_run` with W&B off: batch sampling from the data source, the LR
           schedule, clipping, loss accumulation, the divergence check, timed by the run's own
           throughput meter (which excludes the eval between the halves);
  bare     a plain loop on a fixed random batch: forward, cross-entropy, backward, step, zero_grad.
Printed per size as `key=value` fields (medians over repeats):
  ratio       harness tokens/s / bare tokens/s (>= 1: the harness loop costs nothing)
  gflops      achieved by the harness step, FLOPs counted with the full convention (harness.flops)
  peak_frac   gflops / the fp32 matmul peak at the same threads (harness.peak.matmul_peak_flops)
  eval_frac   the preset's evals (train.evals of them) as a share of the size's longest run
  compile_*   (compile=1) tokens/s with train.compile, its speedup, the seconds its first steps took
              over the compiled step time (compile time: the first repeat's with inductor's cache as it
              was, and the median, once the cache holds the size), and the steps after which it pays
The peak and its fractions are reported only on a quiet machine (`MachineState.fields`): other
runnable threads (/proc/loadavg, sampled before and after) within the cores the benchmark leaves free,
and the matmul peak at the end within 10% of the one at the start; otherwise the last line says
`machine=busy` and why, and no fraction is printed.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness import store  # noqa: E402
from harness.config import Config, register_configs  # noqa: E402
from harness.data import make_source  # noqa: E402
from harness.device import Device, resolve_device  # noqa: E402
from harness.models.build import build_model  # noqa: E402
from harness.peak import matmul_peak_flops  # noqa: E402
from harness.plan import plan_runs  # noqa: E402
from harness.tracking.wandb_run import NullLogger  # noqa: E402
from harness.train import train_run  # noqa: E402

QUIET_SLACK = 0.5  # busy: other runnable threads, on average, exceed the cores the benchmark leaves by this
MAX_PEAK_DRIFT = 0.1  # the peak at the end of the run may differ from the one at its start by this share


def others_running(samples: int = 20, interval_s: float = 0.05) -> float:
    """Mean number of runnable threads besides this one (/proc/loadavg's running count, sampled)."""
    counts = []
    for _ in range(samples):
        with open("/proc/loadavg") as f:
            counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        time.sleep(interval_s)
    return statistics.mean(counts)


@dataclass(frozen=True)
class MachineState:
    """The machine at one moment of a benchmark: load, competing threads, and the matmul peak."""

    load1: float  # 1-minute load average
    others: float  # other runnable threads (others_running)
    free_cores: int  # usable cores less the benchmark's threads
    peak_gflops: float  # fp32 matmul peak at the benchmark's threads

    def fields(self, end: MachineState) -> dict:
        """key=value fields for a run that started in this state and ended in `end`; `machine=busy`
        with the reason when other work wanted more than the cores the benchmark left free, or the peak
        moved, else the peak."""
        drift = abs(end.peak_gflops - self.peak_gflops) / self.peak_gflops
        why = []
        if max(self.others, end.others) > self.free_cores + QUIET_SLACK:
            why.append(f"{max(self.others, end.others):.1f}_other_runnable_threads")
        if drift > MAX_PEAK_DRIFT:
            why.append(f"peak_moved_{drift:.0%}")
        loads = {"load1_start": round(self.load1, 2), "load1_end": round(end.load1, 2)}
        if why:
            return {"machine": "busy", "why": ",".join(why), **loads}
        return {"machine": "quiet", "peak_gflops": round(min(self.peak_gflops, end.peak_gflops), 1), **loads}


def machine_state(threads: int) -> MachineState:
    """The machine now, its peak measured with `threads` torch threads."""
    others = others_running()  # before the peak's own threads run
    torch.set_num_threads(threads)
    free = len(os.sched_getaffinity(0)) - threads
    return MachineState(os.getloadavg()[0], others, free, matmul_peak_flops() / 1e9)


def bare_tokens_per_s(spec, steps: int, device: torch.device) -> float:
    """Tokens/s of a plain loop's second `steps` steps: the same model, batch and AdamW, a fixed batch."""
    model = build_model(spec.shape, seed=0).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.peak_lr, weight_decay=spec.train.weight_decay)
    x = torch.randint(spec.shape.vocab_size, (spec.batch_size, spec.shape.seq_len), device=device)
    y = torch.randint(spec.shape.vocab_size, (spec.batch_size, spec.shape.seq_len), device=device)
    for i in range(2 * steps):
        if i == steps:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(input_ids=x).logits.flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * spec.batch_size * spec.shape.seq_len / (time.perf_counter() - t0)


@dataclass(frozen=True)
class HarnessTiming:
    tokens_per_s: float  # second half, by the run's own meter
    warmup_s: float  # the first half's time over the second's (compile time, with compile)
    eval_s: float  # one eval with its bookkeeping (metrics, abilities)


def harness_timing(spec, source, dev: Device) -> HarnessTiming:
    """`train_run` over 2 x steps steps with an eval after each half."""
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        result = train_run(spec, source, Path(tmp), NullLogger(), dev)
        first, second = store.read_metrics(Path(tmp))
    tokens = second["tokens"] - first["tokens"]
    halves = [tokens / row["perf/tokens_per_s"] for row in (first, second)]
    return HarnessTiming(
        second["perf/tokens_per_s"], halves[0] - halves[1], (result["wall_s"] - sum(halves)) / 2
    )


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    steps, repeats = int(args.pop("steps", 30)), int(args.pop("repeats", 5))
    threads, with_compile = int(args.pop("threads", 1)), bool(int(args.pop("compile", 0)))
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        overrides = ["sweep=cpu", "logger=off", *(f"{k}={v}" for k, v in args.items())]
        preset: Config = OmegaConf.to_object(compose(config_name="config", overrides=overrides))
    tokens_per_step = preset.train.batch_size * preset.data.seq_len
    bench_cfg = replace(
        preset,
        train=replace(preset.train, evals=2, threads=threads, device="cpu"),
        sweep=replace(preset.sweep, design="grid", tokens=[2 * steps * tokens_per_step]),
    )
    source = make_source(preset.data)
    start = machine_state(threads)
    dev = resolve_device(bench_cfg.train, threads)
    plan = dict(vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision=dev.precision)
    longest = {}
    for spec in plan_runs(preset, **plan):
        longest[spec.shape.width] = max(spec, longest.get(spec.shape.width, spec), key=lambda s: s.steps)
    print(
        f"threads={threads} batch={preset.train.batch_size}x{preset.data.seq_len} steps={steps} "
        f"repeats={repeats} torch={torch.__version__}",
        flush=True,
    )
    rows = []
    for spec in plan_runs(bench_cfg, **plan):
        timings: dict[str, list] = {"harness": [], "bare": [], "compiled": []}
        for _ in range(repeats):
            timings["harness"].append(harness_timing(spec, source, dev))
            timings["bare"].append(bare_tokens_per_s(spec, steps, dev.torch))
            if with_compile:
                timings["compiled"].append(harness_timing(spec, source, replace(dev, compile=True)))
        h = statistics.median(t.tokens_per_s for t in timings["harness"])
        b = statistics.median(timings["bare"])
        e = statistics.median(t.eval_s for t in timings["harness"])
        run = longest[spec.shape.width]
        fields = {
            "width": spec.shape.width,
            "depth": spec.shape.depth,
            "params_total": spec.params.total,
            "harness_tok_s": round(h),
            "bare_tok_s": round(b),
            "ratio": round(h / b, 3),
            "gflops": round(spec.flops_per_token * h / 1e9, 2),
            "eval_s": round(e, 3),
            "eval_frac": round(preset.train.evals * e / (run.tokens / h), 3),
        }
        if with_compile:
            c = statistics.median(t.tokens_per_s for t in timings["compiled"])
            compile_s = statistics.median(t.warmup_s for t in timings["compiled"])
            saved_per_step = tokens_per_step / h - tokens_per_step / c
            fields |= {
                "compile_tok_s": round(c),
                "compile_speedup": round(c / h, 3),
                "compile_first_s": round(timings["compiled"][0].warmup_s, 1),  # inductor's cache as it was
                "compile_s": round(compile_s, 1),  # the median: later runs of a size hit the cache
                "compile_pays_after_steps": round(compile_s / saved_per_step)
                if saved_per_step > 0
                else "never",
                "longest_run_steps": run.steps,
            }
        rows.append(fields)
        print(" ".join(f"{k}={v}" for k, v in fields.items()), flush=True)
    state = start.fields(machine_state(threads))
    print(" ".join(f"{k}={v}" for k, v in state.items()), flush=True)
    if state["machine"] == "quiet":
        for fields in rows:
            print(f"width={fields['width']} peak_frac={fields['gflops'] / state['peak_gflops']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
