"""Expected wall time of the runs a sweep still has to train, for its start screen and sanity bound.

FALLBACK, to be replaced by `harness/estimate.py` (the cost model of branch `gpu`: FLOPs / (MFU x the
device's peak), per run size) once that is on main; the sweep calls only `estimate_seconds`, whose
signature that module shares. Until then the rate is one number for the whole plan: the FLOP/s this
sweep's finished runs reached (their own steps over their wall time) or, with none finished, a quick
fp32 matmul on this device (the GPU's datasheet peak on cuda) times an assumed utilisation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from harness.flops import peak_flops
from harness.plan import RunSpec, training_order

ASSUMED_UTILISATION = 0.15  # share of the matmul peak a small model's training step reaches (assumed)


def finished_rate(rows: Iterable[Mapping]) -> tuple[float, int] | None:
    """(FLOP/s, runs) the finished runs trained at, weighted by their wall time; None without any."""
    flops = wall = 0.0
    runs = 0
    for row in rows:
        tps, secs = row.get("tokens_per_s"), row.get("wall_s")
        if row.get("status") == "done" and tps and secs and secs > 0:
            flops += tps * row["flops_per_token"] * secs
            wall += secs
            runs += 1
    return (flops / wall, runs) if runs else None


def matmul_rate(device: str, n: int = 384, reps: int = 20) -> float:
    """FLOP/s of the device: a cuda GPU's datasheet bf16 peak when known; else the fastest of `reps`
    square fp32 matmuls on it (other work on the machine only slows some of them down), with this
    process's torch threads on cpu; well under a second on one cpu core."""
    import torch

    if device == "cuda":
        peak = peak_flops(torch.cuda.get_device_name())
        if peak:
            return peak
        n *= 8  # a GPU needs larger matrices to show its rate
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):  # warm up: allocations, the thread pool, kernel selection
        a @ b
    best = float("inf")
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def estimate_seconds(
    specs: Sequence[RunSpec], device: str, finished: Iterable[Mapping] = ()
) -> tuple[float, str]:
    """Expected wall seconds to train `specs` (their WSD main runs included) one after another on
    `device`, and how the figure was made in a few words."""
    flops = sum(s.flops_spent for s in training_order(specs))
    measured = finished_rate(finished)
    if measured is not None:
        rate, runs = measured
        basis = f"at the {rate:.3g} FLOP/s of this sweep's {runs} finished run(s)"
    else:
        rate = matmul_rate(device) * ASSUMED_UTILISATION
        basis = f"at {ASSUMED_UTILISATION:.0%} of this {device}'s matmul rate, assumed ({rate:.3g} FLOP/s)"
    return flops / rate, basis
