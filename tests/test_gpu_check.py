"""The device check runs on CPU (smaller, saying so) through its shell wrapper and prints key=value lines."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
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
        words = shlex.split(text)
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
    assert check["mode"] == "cpu" and check["mfu_against"] == "measured"
    assert float(check["peak_tflops_measured"]) > 0
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
        assert float(f["tokens_per_s"]) > 0 and 0 < float(f["mfu"]) < 1 and float(f["peak_mem_mb"]) > 0
        assert int(f["params"]) == count_params(model).total  # the plan's count is the built model's
        assert int(f["params_nonembedding"]) == count_params(model).nonembedding
    packs = [f for s, f in lines if s == "pack" and "runs" in f]
    assert [f["runs"] for f in packs] == ["1", "2"] and float(packs[0]["gain"]) == 1
    assert all(float(f["tokens_per_s"]) > 0 for f in packs)
    (planned,) = [f for s, f in lines if s == "pack" and "planned_runs" in f]
    assert int(planned["planned_runs"]) == usable_cores()  # on cpu: one small run per usable core


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
