"""Print a sweep's plan and its expected wall time on named devices (harness.estimate), as key=value lines.

    python scripts/estimate.py sweep=gpu                          # one H100 SXM (the README's figure)
    python scripts/estimate.py sweep=gpu --device A100 --device L4
    python scripts/estimate.py sweep=cpu --device cpu --at-once=2 # this machine's cores, 2 runs at once
    python scripts/estimate.py sweep=gpu sweep.branches=true train.schedule=wsd

Overrides compose as for `python -m harness.sweep`. The plan uses data.vocab_size as the vocabulary
(a text source's tokenizer may end up with fewer ids) and builds no data source.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness.config import Config, register_configs  # noqa: E402
from harness.estimate import Throughput, cpu_throughput, estimate_seconds, gpu_throughput  # noqa: E402
from harness.plan import compute_summary, plan_runs  # noqa: E402
from harness.validate import validate  # noqa: E402


def throughput(device: str) -> Throughput:
    """A named GPU from the peak table, or this machine's CPU (one core's fp32 matmul peak, measured)."""
    if device != "cpu":
        return gpu_throughput(device)
    import torch

    from harness.peak import matmul_peak_flops

    torch.set_num_threads(1)
    return cpu_throughput(matmul_peak_flops())


def parse(argv: list[str]) -> tuple[list[str], list[str], int]:
    """(Hydra overrides, devices, runs at once) from `--device NAME`, `--device=NAME`, `--at-once=K`."""
    overrides, devices, at_once = [], [], 1
    args = iter(argv)
    for arg in args:
        if arg == "--device":
            devices.append(next(args))
        elif arg.startswith("--device="):
            devices.append(arg.split("=", 1)[1])
        elif arg.startswith("--at-once="):
            at_once = int(arg.split("=", 1)[1])
        else:
            overrides.append(arg)
    return overrides, devices or ["H100 SXM"], at_once


def main(argv: list[str]) -> None:
    overrides, devices, at_once = parse(argv)
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg: Config = OmegaConf.to_object(compose(config_name="config", overrides=overrides))
    validate(cfg)
    plan = plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="estimate", precision="bf16")
    sizes = sorted({r.params.total for r in plan})
    tokens_per_param = [r.tokens / r.params.total for r in plan]
    steps = [r.steps for r in plan]
    print(
        f"sweep={cfg.sweep.name} runs={len(plan)} budgets={len({r.budget for r in plan})} sizes={len(sizes)} "
        f"params={sizes[0]:.3g}-{sizes[-1]:.3g} steps={min(steps)}-{max(steps)} "
        f"tokens_per_param={min(tokens_per_param):.3g}-{max(tokens_per_param):.3g} "
        f"flops_trained={compute_summary(plan)['flops_spent']:.3g}"
    )
    for device in devices:
        seconds, basis = estimate_seconds(
            plan, throughput(device), val_tokens=cfg.data.val_tokens, runs_at_once=at_once
        )
        print(f'device="{device}" hours={seconds / 3600:.2f} basis="{basis}"')


if __name__ == "__main__":
    main(sys.argv[1:])
