"""Training FLOPs per token under named conventions, and accelerator peaks for MFU. Pure: no torch.

Symbols: N = non-embedding parameters (`harness.models.param_counts(shape).nonembedding`), d = width,
L = depth, T = seq_len, V = vocab_size, f = ffn_hidden. One FLOP is one multiply or one add, so a
matmul of an input row with a d_in x d_out weight costs 2 * d_in * d_out.

Conventions (per training token, forward + backward):
- "6n": Kaplan et al. 2020, "Scaling Laws for Neural Language Models", sec. 2.1: C = 6N. It leaves
  out the attention scores (Kaplan's 2 * L * T * d forward term, small when d > T / 12), the LM head
  and the embeddings; N here is the exact count, so norm weights and biases count like matmul weights.
- "full": the matmul terms of Hoffmann et al. 2022 (Chinchilla), appendix F, which is also how
  torch.utils.flop_counter counts. forward = 2 * (every matmul weight: q, k, v, o projections, the
  2 (gpt2, neox) or 3 (llama, gated) MLP matrices, the LM head) + 2 * 2 * L * T * d for the
  attention scores QK^T and the attention-weighted values over the full T x T square (no saving
  from the causal mask: appendix F and torch's flop counter both count the square).
  backward = 2 * forward, so the total is 3 * forward. The LM head counts even when tied (it is
  still a matmul). Unlike appendix F, the input embedding (a table lookup here, a one-hot matmul
  there) and the softmax are not counted. These are model FLOPs: torch's counter, on a fused sdpa
  kernel, adds the QK^T the kernel recomputes in its backward (+0.5 * forward attention), which
  PaLM's MFU definition (Chowdhery et al. 2022) leaves out as rematerialisation.
Both leave out norms, softmax, activations (and llama's gate product), rotary, residual adds and
bias adds: O(d) per token per layer, against O(d^2) for the matmuls.

lstm (h = its hidden size, `ffn_hidden`): "full" is 3 * 2 * (matmul weights), the weights being the
four gates' input and recurrent matrices, 4h(d + h) in the first layer and 8h^2 in each later one,
plus the h x V head; there is no attention term. The gates' sigmoids, tanhs and products (about 10h
per layer per token) are left out, like the norms above. "6n" is 6 * N_nonembedding as for the rest.
"""

from __future__ import annotations

import re

from harness.models import ModelShape, family, matmul_params, param_counts

FLOP_CONVENTIONS: dict[str, str] = {
    "6n": "Kaplan et al. 2020 sec 2.1: 6 * N_nonembedding per token (no attention scores, no LM head)",
    "full": "Hoffmann et al. 2022 app. F: 3 * (2 * matmul weights incl. LM head + 4 * L * T * d attention)"
    " (lstm: no attention term)",
}


def flops_per_token(shape: ModelShape, convention: str) -> float:
    """Training (forward + backward) FLOPs per token of `shape` under `convention` (see FLOP_CONVENTIONS)."""
    if convention == "6n":
        return 6.0 * param_counts(shape).nonembedding
    if convention == "full":
        # QK^T and scores @ V over the full T x T square; an LSTM has no attention
        attention = 2 * 2 * shape.depth * shape.seq_len * shape.width if family(shape.family).attention else 0
        forward = 2 * matmul_params(shape) + attention
        return 3.0 * forward
    raise ValueError(f"fit.flops: unknown convention {convention!r}; allowed: {', '.join(FLOP_CONVENTIONS)}")


# Dense (no sparsity) bf16 tensor-core peaks, FLOP/s; fp16 where the GPU has no bf16 (V100, T4). MFU =
# achieved model FLOP/s / peak, as in PaLM. Sources, the vendors' datasheets (where a sheet quotes "with
# sparsity", half of it): NVIDIA H100 (SXM 989.4 TF, PCIe 756 TF, NVL 835 TF), H200 (SXM 989 TF, NVL
# 835 TF; GH200's GPU is an H100/H200 SXM), A100 (312 TF, 40 and 80 GB alike), L40S (362 TF), L4 (121 TF),
# RTX 4090 (Ada whitepaper: 165.2 TF with fp32 accumulate), V100 (125 TF fp16), T4 (65 TF fp16), B200
# (HGX B200: 2.25 PF dense); AMD MI300X (1307.4 TF). A10G has no datasheet: the commonly quoted figure.
# Figures are per GPU; clocks in the field can be lower (a power-capped or PCIe part reaches less).
PEAK_FLOPS: dict[str, float] = {
    "B200": 2250e12,
    "H100 SXM": 989.4e12,
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H200": 989.4e12,
    "H200 NVL": 835e12,
    "MI300X": 1307.4e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "RTX 4090": 165.2e12,
    "V100": 125e12,  # fp16
    "T4": 65e12,  # fp16
}

# (pattern in torch.cuda.get_device_name(), PEAK_FLOPS key), most specific first; patterns match as
# whole words, so "L4" does not match "L40S" and "A100" does not match "A10G".
_DEVICE_PATTERNS = [
    ("B200", "B200"),
    ("H100 PCIe", "H100 PCIe"),
    ("H100 NVL", "H100 NVL"),
    ("H100", "H100 SXM"),  # "NVIDIA H100 80GB HBM3" is the SXM part
    ("H200 NVL", "H200 NVL"),
    ("H200", "H200"),
    ("GH200", "H200"),
    ("MI300X", "MI300X"),
    ("A100", "A100"),
    ("A10G", "A10G"),
    ("L40S", "L40S"),
    ("L4", "L4"),
    ("RTX 4090", "RTX 4090"),
    ("V100", "V100"),
    ("T4", "T4"),
]


def peak_flops(device_name: str, override: float = 0.0) -> float | None:
    """Peak FLOP/s of the named device: `override` when > 0, else the PEAK_FLOPS entry whose pattern
    occurs in `device_name` (e.g. torch.cuda.get_device_name()), else None (unknown device)."""
    if override > 0:
        return float(override)
    for pattern, key in _DEVICE_PATTERNS:
        if re.search(rf"\b{re.escape(pattern)}\b", device_name, flags=re.IGNORECASE):
            return PEAK_FLOPS[key]
    return None


def mfu(flops_per_s: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over peak FLOP/s; None when the peak is unknown."""
    if peak is None or peak <= 0:
        return None
    return flops_per_s / peak
