"""Benchmark the training step on CPU: the harness's loop against a bare PyTorch loop, per `cpu` size.

    .venv/bin/python scripts/bench.py                       # the cpu preset's widths, all cores
    .venv/bin/python scripts/bench.py steps=40 repeats=5 threads=1

For every width of the `cpu` preset (smallest first, largest last) the same model, batch and AdamW
train `steps` steps, `repeats` times, alternately:
  harness  `harness.train.train_run` with W&B off: batch sampling from the data source, the LR
           schedule, clipping, loss accumulation, the divergence check, timed by the run's own
           throughput meter (which stops before its one eval, at the end);
  bare     a plain loop on a fixed random batch: forward, cross-entropy, backward, step, zero_grad.
Printed per size as `key=value` fields (medians over repeats):
  ratio      harness time per step / bare time per step
  gflops     achieved by the harness step, FLOPs counted with the full convention (harness.flops)
  peak_gflops the measured fp32 matmul throughput (median of square matmuls, best size)
  peak_frac  gflops / peak_gflops
  eval_frac  the preset's evals (train.evals of them) as a share of the size's longest run
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
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
from harness.models.build import build_model  # noqa: E402
from harness.peak import matmul_peak_flops  # noqa: E402
from harness.plan import plan_runs  # noqa: E402
from harness.tracking.wandb_run import NullLogger  # noqa: E402
from harness.train import resolve_device, train_run, usable_cores  # noqa: E402


def bare_step_s(spec, steps: int, device: torch.device) -> float:
    """Seconds per step of a plain loop: the same model, batch size and AdamW, a fixed batch."""
    model = build_model(spec.shape, seed=0).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.peak_lr, weight_decay=spec.train.weight_decay)
    x = torch.randint(spec.shape.vocab_size, (spec.batch_size, spec.shape.seq_len), device=device)
    y = torch.randint(spec.shape.vocab_size, (spec.batch_size, spec.shape.seq_len), device=device)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(model(input_ids=x).logits.flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return (time.perf_counter() - t0) / steps


def harness_step_s(spec, source, dev, steps: int) -> tuple[float, float]:
    """Seconds per step of `train_run`, as its own throughput meter reports it (the time between
    evals), and the seconds its one eval took with its bookkeeping (metrics, abilities, logging)."""
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        result = train_run(spec, source, Path(tmp), NullLogger(), dev)
        (row,) = store.read_metrics(Path(tmp))
    step_s = spec.batch_size * spec.shape.seq_len / row["perf/tokens_per_s"]
    return step_s, result["wall_s"] - steps * step_s


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    steps, repeats = int(args.pop("steps", 30)), int(args.pop("repeats", 5))
    threads = int(args.pop("threads", 0)) or usable_cores()
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        overrides = ["sweep=cpu", "logger=off", *(f"{k}={v}" for k, v in args.items())]
        preset: Config = OmegaConf.to_object(compose(config_name="config", overrides=overrides))
    tokens_per_step = preset.train.batch_size * preset.data.seq_len
    bench_cfg = replace(
        preset,
        train=replace(preset.train, evals=1, threads=threads, device="cpu"),
        sweep=replace(preset.sweep, design="grid", tokens=[steps * tokens_per_step]),
    )
    source = make_source(preset.data)
    dev = resolve_device(bench_cfg.train, threads)
    plan = dict(vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision=dev.precision)
    longest = {}
    for spec in plan_runs(preset, **plan):
        longest[spec.shape.width] = max(spec, longest.get(spec.shape.width, spec), key=lambda s: s.steps)
    torch.set_num_threads(threads)
    peak = matmul_peak_flops() / 1e9
    print(
        f"threads={threads} batch={preset.train.batch_size}x{preset.data.seq_len} steps={steps} "
        f"repeats={repeats} torch={torch.__version__}"
    )
    for spec in plan_runs(bench_cfg, **plan):
        harness, bare, evals = [], [], []
        for _ in range(repeats):
            h, e = harness_step_s(spec, source, dev, steps)
            harness.append(h)
            evals.append(e)
            bare.append(bare_step_s(spec, steps, dev.torch))
        h, b, e = (statistics.median(v) for v in (harness, bare, evals))
        gflops = spec.flops_per_token * tokens_per_step / h / 1e9
        run = longest[spec.shape.width]
        fields = {
            "width": spec.shape.width,
            "depth": spec.shape.depth,
            "params_total": spec.params.total,
            "harness_tok_s": round(tokens_per_step / h),
            "bare_tok_s": round(tokens_per_step / b),
            "ratio": round(h / b, 3),
            "gflops": round(gflops, 2),
            "peak_gflops": round(peak, 1),
            "peak_frac": round(gflops / peak, 3),
            "eval_s": round(e, 3),
            "eval_frac": round(preset.train.evals * e / (run.steps * h), 3),
        }
        print(" ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
