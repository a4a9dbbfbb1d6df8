"""The matmul throughput this machine actually reaches: the peak an MFU or a time estimate is measured against
on a CPU (which has no datasheet figure here), and a check of the datasheet figure on a GPU."""

from __future__ import annotations

import statistics
import time

import torch


def matmul_peak_flops(
    device: str = "cpu",
    *,
    dtype: torch.dtype = torch.float32,
    sizes: tuple[int, ...] = (512, 1024, 2048),
    reps: int = 10,
) -> float:
    """Best median throughput of square matmuls on `device` in `dtype`, FLOP/s (2 n^3 FLOPs per product),
    with the torch threads already set. About 0.3 s on one CPU core at the default sizes; a GPU needs
    larger sizes (e.g. 8192) to fill its tensor cores."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    best = 0.0
    for n in sizes:
        a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
        a @ b  # warm up (allocations, kernel selection)
        sync()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            a @ b
            sync()
            times.append(time.perf_counter() - t0)
        best = max(best, 2 * n**3 / statistics.median(times))
    return best
