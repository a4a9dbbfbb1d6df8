"""FLOP conventions against torch's flop counter on the built models, and the MFU helpers."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from harness.config import ModelConfig
from harness.flops import FLOP_CONVENTIONS, PEAK_FLOPS, flops_per_token, matmul_params, mfu, peak_flops
from harness.models import ModelShape, param_counts, shape_for_width
from harness.models.build import build_model
from harness.models.families import TRANSFORMER_FAMILIES

aten = torch.ops.aten


def make_shape(family: str, width: int = 64, tie: bool = False) -> ModelShape:
    return shape_for_width(width, ModelConfig(family=family, tie_embeddings=tie), 256, 32)


# On CPU, sdpa dispatches to a fused kernel torch's counter has no formula for; count it with torch's
# own formulas for the GPU sdpa kernels (full T x T square; backward includes recomputing QK^T).
def _cpu_sdpa(q, k, v, *args, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(q, k, v)


def _cpu_sdpa_backward(grad_out, q, k, v, *args, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out, q, k, v)


CPU_SDPA = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward,
}


def counted_flops(shape: ModelShape, *, math_attention: bool = False) -> int:
    """FLOPs torch's counter sees in one forward + backward of the built model on a [2, T] batch.

    math_attention: run sdpa's unfused math backend, whose bmm's the counter counts directly
    (no recomputation in the backward)."""
    model = build_model(shape, seed=0)
    x = torch.randint(0, shape.vocab_size, (2, shape.seq_len), generator=torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False, custom_mapping=CPU_SDPA)
    with sdpa_kernel(SDPBackend.MATH) if math_attention else nullcontext(), counter:
        model(input_ids=x, labels=x).loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("family", TRANSFORMER_FAMILIES)
@pytest.mark.parametrize("tie", [False, True])
def test_full_count_matches_flop_counter(family: str, tie: bool) -> None:
    """The model as it trains (fused sdpa): within 5% (measured ~1%, the kernel's recomputation)."""
    shape = make_shape(family, tie=tie)
    predicted = flops_per_token(shape, "full") * 2 * shape.seq_len
    assert predicted == pytest.approx(counted_flops(shape), rel=0.05)


@pytest.mark.parametrize("family", TRANSFORMER_FAMILIES)
def test_full_count_is_exact_with_unfused_attention(family: str) -> None:
    shape = make_shape(family)
    predicted = flops_per_token(shape, "full") * 2 * shape.seq_len
    assert predicted == counted_flops(shape, math_attention=True)
    assert predicted > 6 * matmul_params(shape) * 2 * shape.seq_len * 1.03  # the attention term matters here


def test_lstm_full_count_matches_flop_counter() -> None:
    """torch's own LSTM kernel (oneDNN off, so the counter sees its matmuls) on a [2, T] batch: exact,
    less the gradient with respect to the zero initial state, which torch does not compute
    (one h x 4h matmul per layer and sequence)."""
    shape = make_shape("lstm")
    model = build_model(shape, seed=0)
    x = torch.randint(0, shape.vocab_size, (2, shape.seq_len), generator=torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    with torch.backends.mkldnn.flags(enabled=False), counter:
        logits = model(input_ids=x).logits
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), x.flatten()).backward()
    predicted = flops_per_token(shape, "full") * 2 * shape.seq_len
    h = shape.ffn_hidden
    assert counter.get_total_flops() == predicted - 2 * shape.depth * 2 * 4 * h * h


@pytest.mark.parametrize("family", TRANSFORMER_FAMILIES)
@pytest.mark.parametrize("tie", [False, True])
def test_6n_is_six_times_nonembedding(family: str, tie: bool) -> None:
    shape = make_shape(family, tie=tie)
    assert flops_per_token(shape, "6n") == 6 * param_counts(shape).nonembedding


def test_conventions_are_named_and_unknown_ones_fail() -> None:
    assert set(FLOP_CONVENTIONS) == {"6n", "full"}
    with pytest.raises(ValueError, match="allowed: 6n, full"):
        flops_per_token(make_shape("llama"), "2n")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H200 NVL", "H200 NVL"),
        ("NVIDIA GH200 480GB", "H200"),
        ("NVIDIA B200", "B200"),
        ("AMD Instinct MI300X", "MI300X"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA A100 80GB PCIe", "A100"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("Tesla V100-SXM2-16GB", "V100"),
        ("Tesla T4", "T4"),
    ],
)
def test_peak_flops_matches_device_names(name: str, key: str) -> None:
    assert peak_flops(name) == PEAK_FLOPS[key]


def test_peak_flops_unknown_and_override() -> None:
    assert peak_flops("NVIDIA L40") is None  # neither L4 nor L40S
    assert peak_flops("cpu") is None
    assert peak_flops("NVIDIA H100 80GB HBM3", override=1e15) == 1e15
    assert peak_flops("mystery accelerator", override=2e14) == 2e14


def test_mfu() -> None:
    assert mfu(494.7e12, PEAK_FLOPS["H100 SXM"]) == pytest.approx(0.5)
    assert mfu(1e12, None) is None
    assert mfu(1e12, 0.0) is None
