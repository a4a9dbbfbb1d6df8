"""Progress while a run trains (a bar on a terminal, a line now and then in a log) and the time estimate
of the start screen."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.progress import RunProgress, duration


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(42, "42 s"), (600, "10 min"), (7200, "2 h"), (5 * 86400, "5 days"), (3.156e16, "1e+09 years")],
)
def test_durations_read_at_a_glance(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_a_log_gets_a_plain_line_now_and_then_with_loss_and_eta() -> None:
    log = io.StringIO()
    hook = RunProgress("[2/9] w32-d1-t32768", 100, stream=log, every_s=0.0)
    for step in range(1, 101):
        hook(step, 3.0 - step / 100)
    hook.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 99  # every step but the last (the sweep prints the run's own final line)
    assert "[2/9] w32-d1-t32768  step 50/100 (50%)  loss 2.5000" in lines[49] and " eta " in lines[49]
    quiet = io.StringIO()
    hook = RunProgress("x", 100, stream=quiet)  # every 30 s: a short run prints nothing
    for step in range(1, 101):
        hook(step, 1.0)
    assert quiet.getvalue() == ""


def test_a_terminal_gets_a_bar_that_goes_away_at_the_end() -> None:
    term = _Terminal()
    hook = RunProgress("[1/1] w16", 40, stream=term)
    for step in range(1, 41):
        hook(step, 2.0)
    hook.close()
    text = term.getvalue()
    assert text.startswith("\r[1/1] w16:") and "/40 [" in text and "step/s" in text  # redrawn in place
    assert text.endswith("\r") and "\n" not in text  # cleared: the sweep's line for the run follows


def test_the_estimate_uses_finished_runs_else_the_device_checks_mfu_else_the_assumed_one(
    tmp_path: Path,
) -> None:
    from harness.estimate import cpu_throughput, device_throughput, record_measured_mfu

    def throughput(device: str, rows: list[dict], checked: Path):  # what the start screen does for a GPU
        return device_throughput(device, 7e10, rows, checked, cpu_throughput(7e10))

    rows = [
        {"status": "done", "params_nonembedding": 1e4, "tokens_per_s": 1000.0, "flops_per_token": 1e6},
        {"status": "diverged", "params_nonembedding": 1e5, "tokens_per_s": 1.0, "flops_per_token": 1.0},
    ]
    checked = tmp_path / "measured_mfu.json"
    measured = throughput("cpu", rows, checked)
    assert measured.basis == "MFU measured on 1 finished runs"
    assert measured.mfu_at(1e4) * measured.peak_flops == pytest.approx(1e9)  # what the run reached
    assumed = throughput("cpu", [], checked)
    assert assumed.peak_flops > 0 and "measured, MFU assumed" in assumed.basis
    record_measured_mfu(checked, "cpu", 5e10, [(3e5, 0.4), (1e4, 0.1)], "scripts/gpu_check.py on 2026-12-01")
    record_measured_mfu(checked, "NVIDIA H100 80GB HBM3", 7.9e14, [(1e6, 0.05)], "scripts/gpu_check.py")
    device_checked = throughput("cpu", [], checked)
    assert device_checked.peak_flops == 5e10 and device_checked.mfu == ((1e4, 0.1), (3e5, 0.4))
    assert device_checked.basis.startswith("peak and MFU measured by scripts/gpu_check.py on 2026-12-01")
    assert throughput("cpu", rows, checked).basis == "MFU measured on 1 finished runs"  # its own runs first
