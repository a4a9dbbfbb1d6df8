"""The device check runs on CPU (smaller, saying so) through its shell wrapper and prints key=value lines."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.data import make_source
from harness.device import usable_cores
from harness.models.build import build_model, count_params
from harness.models.families import shape_for_width
from tests.conftest import ROOT, compose_config

SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def parse(stdout: str) -> list[tuple[str, dict[str, str]]]:
    """`section key=value ...` lines -> (section, fields); other lines are left out."""
    out = []
    for text in stdout.splitlines():
        try:
            words = shlex.split(text)
        except ValueError:  # prose with an apostrophe (a report's lines in first_contact's file)
            continue
        if len(words) > 1 and all("=" in w for w in words[1:]):
            out.append((words[0], dict(w.split("=", 1) for w in words[1:])))
    return out


def _run(*args: str, python: str = sys.executable, wheels: str = "wheelhouse") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": python, "WHEELS": wheels, "MPLBACKEND": "Agg"}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_gpu_check_on_cpu_prints_every_section() -> None:
    """The quick CPU run: the smoke sweep, the smallest cpu size with compile off and on, 1 and 2 runs at
    once. Speeds are not asserted (a shared machine); that each part ran and reported sane numbers is."""
    done = _run("--device=cpu", "--sizes=1", "--compile=off,on", "--pack=1,2")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    lines = parse(done.stdout)
    sections = [s for s, _ in lines]
    assert sections[0] == "check" and sections[-1] == "done"
    check = lines[0][1]
    assert check["mode"] == "cpu"
    (peak,) = [f for s, f in lines if s == "peak"]
    assert float(peak["tflops_measured"]) > 0 and peak["tflops_datasheet"] == "none"
    assert any(s == "check" and "not GPU figures" in f.get("note", "") for s, f in lines)
    (smoke,) = [f for s, f in lines if s == "smoke"]
    assert smoke["rc"] == "0" and smoke["runs"] == "9/9" and smoke["verdict"] == "untested"
    sizes = [f for s, f in lines if s == "size"]
    cpu = compose_config("sweep=cpu")
    smallest = min(cpu.sweep.widths)
    assert [(int(f["width"]), f["compile"]) for f in sizes] == [(smallest, "0"), (smallest, "1")]
    vocab = make_source(cpu.data).vocab_size
    model = build_model(shape_for_width(smallest, cpu.model, vocab, cpu.data.seq_len))
    for f in sizes:
        assert (
            float(f["tokens_per_s"]) > 0 and 0 < float(f["mfu_measured"]) < 1 and float(f["peak_mem_mb"]) > 0
        )
        assert f["mfu_datasheet"] == "none"  # a CPU has no datasheet peak here
        assert int(f["params"]) == count_params(model).total  # the plan's count is the built model's
        assert int(f["params_nonembedding"]) == count_params(model).nonembedding
    packs = [f for s, f in lines if s == "pack" and "runs" in f]
    assert [f["runs"] for f in packs] == ["1", "2"] and float(packs[0]["gain"]) == 1
    assert all(float(f["tokens_per_s"]) > 0 for f in packs)
    (planned,) = [f for s, f in lines if s == "pack" and "planned_runs" in f]
    assert int(planned["planned_runs"]) == usable_cores()  # on cpu: one small run per usable core
    (data,) = [f for s, f in lines if s == "data"]
    assert float(data["batch_ms"]) > 0 and -1 < float(data["wait_share"]) < 1 and data["same_as_host"] == "1"
    (mfu,) = [f for s, f in lines if s == "mfu"]  # what the estimate reads for this device
    entry = json.loads(Path(mfu["file"]).read_text())["cpu"]
    measured = [float(f["mfu_measured"]) for f in sizes if f["compile"] == "0"]
    assert [m for _, m in entry["mfu"]] == pytest.approx(measured, rel=1e-3)
    assert entry["peak_flops"] == pytest.approx(float(peak["tflops_measured"]) * 1e12, rel=1e-3)


def test_gpu_check_without_packages_or_wheels_says_so(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    done = _run("--device=cpu", python=str(bare / "bin" / "python"), wheels=str(tmp_path / "none"))
    assert done.returncode == 1
    ((section, fields),) = parse(done.stdout)
    assert section == "install" and "there is no wheel folder" in fields["error"]


@pytest.mark.parametrize("text", ['check mode=cpu device="AMD EPYC 7B13" load=1.5', "smoke wall_s=3.2"])
def test_parse_reads_quoted_values(text: str) -> None:
    ((section, fields),) = parse(text)
    assert section in ("check", "smoke") and all(fields.values())


# --- faults: each is one line and the check goes on, inside its budget --------------------------------------

BUDGET_S = 150  # the faulted checks' budget; each must end within it plus 30 s


@pytest.fixture
def gpu_check(monkeypatch: pytest.MonkeyPatch):
    """scripts/gpu_check.py imported by name, so that the processes it spawns import the same module
    (and, through the parent's sys.path, the faults below that a test puts in its place)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import gpu_check

    return gpu_check


def run_check(gpu_check, capsys: pytest.CaptureFixture, *args: str) -> tuple[list, float]:
    t0 = time.perf_counter()
    gpu_check.main(["--device=cpu", f"--budget-s={BUDGET_S}", *args])
    wall = time.perf_counter() - t0
    return parse(capsys.readouterr().out), wall


def fields_of(lines: list, section: str) -> list[dict[str, str]]:
    return [f for s, f in lines if s == section]


def out_of_memory(spec, source, dev) -> dict:
    """A size measurement that runs out of memory, as a GPU's would."""
    import torch

    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.1 GiB total)")


def dying_pack_worker(spec, source, dev, barrier, wait_s: float) -> float:
    """With others packed beside it, the first worker to get here dies before the barrier (as if the OOM
    killer took it); the rest wait there for it, as gpu_check's own workers would."""
    if barrier.parties > 1:
        try:
            os.close(os.open(os.environ["GPU_CHECK_DEAD_FLAG"], os.O_CREAT | os.O_EXCL))
            os._exit(9)
        except FileExistsError:
            pass
    barrier.wait(timeout=wait_s)
    return 1000.0


@pytest.mark.slow
def test_a_smoke_sweep_past_its_timeout_is_killed_and_the_check_goes_on(gpu_check, capsys, monkeypatch):
    monkeypatch.setattr(gpu_check, "CPU", replace(gpu_check.CPU, smoke_s=3))
    lines, wall = run_check(gpu_check, capsys, "--sizes=1", "--compile=off", "--pack=", "--skip=data")
    assert wall < BUDGET_S + 30
    (smoke,) = fields_of(lines, "smoke")
    assert smoke["error"] == "timeout after 3 s: killed" and float(smoke["wall_s"]) < 3 + 10
    (size,) = fields_of(lines, "size")
    assert float(size["tokens_per_s"]) > 0  # measured after the smoke's fault
    assert [s for s, _ in lines][-1] == "done"


@pytest.mark.slow
def test_a_failing_compile_is_one_line_and_the_check_goes_on(gpu_check, capsys, monkeypatch):
    """torch.compile with no working C++ compiler (inductor calls $CXX; `false` fails every build)."""
    monkeypatch.setenv("CXX", "false")
    lines, wall = run_check(
        gpu_check, capsys, "--sizes=1", "--compile=on,off", "--pack=", "--skip=smoke,data"
    )
    assert wall < BUDGET_S + 30
    compiled, eager = fields_of(lines, "size")
    assert compiled["compile"] == "1" and "error" in compiled and "tokens_per_s" not in compiled
    assert eager["compile"] == "0" and float(eager["tokens_per_s"]) > 0
    (mfu,) = fields_of(lines, "mfu")  # the cpu preset trains without compile: its MFU was measured
    assert mfu["compile"] == "0" and mfu["sizes"] == "1"


@pytest.mark.slow
def test_a_dead_pack_worker_is_one_line_and_the_check_goes_on(gpu_check, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(gpu_check, "pack_worker", dying_pack_worker)
    monkeypatch.setenv("GPU_CHECK_DEAD_FLAG", str(tmp_path / "dead"))
    lines, wall = run_check(gpu_check, capsys, "--skip=smoke,size,data", "--pack=2,1")
    assert wall < BUDGET_S + 30
    two, one, planned = fields_of(lines, "pack")
    assert two["runs"] == "2" and two["error"] == "a process died (exit code 9)"
    assert one["runs"] == "1" and float(one["tokens_per_s"]) == 1000  # the next packing still ran
    assert "planned_runs" in planned and [s for s, _ in lines][-1] == "done"


@pytest.mark.slow
def test_out_of_memory_is_one_line_and_the_check_goes_on(gpu_check, capsys, monkeypatch):
    monkeypatch.setattr(gpu_check, "measure_size", out_of_memory)
    lines, wall = run_check(gpu_check, capsys, "--sizes=2", "--compile=off", "--pack=1", "--skip=smoke,data")
    assert wall < BUDGET_S + 30
    sizes = fields_of(lines, "size")
    assert len(sizes) == 2 and all(
        f["error"].startswith("OutOfMemoryError: CUDA out of memory") for f in sizes
    )
    assert not fields_of(lines, "mfu")  # nothing measured, nothing written
    assert float(fields_of(lines, "pack")[0]["tokens_per_s"]) > 0


@pytest.mark.slow
def test_a_short_budget_skips_what_does_not_fit_in_one_line(gpu_check, capsys):
    """30 s: the peak, then the smoke sweep cut at what is left; the rest is skipped and said so."""
    t0 = time.perf_counter()
    gpu_check.main(["--device=cpu", "--budget-s=30", "--sizes=1", "--compile=off,on", "--pack=1,2"])
    wall = time.perf_counter() - t0
    lines = parse(capsys.readouterr().out)
    assert wall < 30 + 30
    assert [s for s, _ in lines][:3] == ["check", "check", "peak"] and [s for s, _ in lines][-1] == "done"
    (skipped,) = fields_of(lines, "skipped")
    w = min(compose_config("sweep=cpu").sweep.widths)
    for step in (
        f"size width={w} compile=0",
        f"size width={w} compile=1",
        "data",
        "pack runs=1",
        "pack runs=2",
    ):
        assert step in skipped["steps"]


@pytest.mark.slow
def test_first_contact_runs_end_to_end_in_its_cpu_mode(tmp_path: Path) -> None:
    """scripts/first_contact.sh with FIRST_CONTACT_MODE=cpu: the same steps as on a GPU node (facts, the
    node's package list, the check with its smoke sweep kept), every figure in one file."""
    figures = tmp_path / "first_contact.txt"
    env = {**os.environ, "PYTHON": sys.executable, "MPLBACKEND": "Agg", "FIRST_CONTACT_MODE": "cpu",
           "FIRST_CONTACT_BUDGET_S": "400"}  # fmt: skip
    argv = [
        str(ROOT / "scripts" / "first_contact.sh"),
        str(figures),
        "--sizes=1",
        "--compile=off",
        "--pack=1",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    text = figures.read_text()
    lines = parse(text)
    sections = [s for s, _ in lines]
    for section in ("first_contact", "node", "check", "peak", "smoke", "size", "mfu", "data", "pack", "done"):
        assert section in sections, section
    freeze = text.split("freeze end")[0].split("\n", 3)[-1]
    assert any(row.startswith("torch==") for row in freeze.splitlines())  # the node's package list
    (smoke,) = [f for s, f in lines if s == "smoke"]
    assert smoke["rc"] == "0" and smoke["runs"] == "9/9"
    assert "smoke_file results.csv begin" in text and "smoke_file report.md begin" in text
    assert any(s == "check" and f.get("rc") == "0" for s, f in lines)  # the check's own exit status
    assert lines[-1][0] == "first_contact" and "wall_s" in lines[-1][1]
