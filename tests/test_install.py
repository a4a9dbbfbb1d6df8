"""Installing on a GPU node: the harness's requirements without torch, a torch already there kept, and the
offline path (`make wheels` once with an index, `make install-offline` from the folder with none)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, load_script

PY_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
offline_env = load_script("rehearse_node").offline_env


def test_requirements_leave_out_torch_and_add_extras() -> None:
    reqs = load_script("install")
    base = reqs.requirements([])
    assert not any(r.startswith("torch") for r in base)
    assert any(r.startswith("hydra-core") for r in base) and any(r.startswith("wandb") for r in base)
    with_dev = reqs.requirements(["dev"])
    assert set(base) < set(with_dev) and any(r.startswith("pytest") for r in with_dev)
    with pytest.raises(SystemExit, match="extras: unknown nope; allowed: dev"):
        reqs.requirements(["nope"])


@pytest.mark.parametrize(
    "version, ok",
    [("2.13.0+cpu", True), ("2.4.0", True), ("2.6.0a0+ecf3bae", True), ("2.3.1+cu121", False)],
)
def test_torch_constraint_keeps_a_recent_enough_torch(
    version: str, ok: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed torch becomes `torch==<its version>` (NGC pre-releases included); an older one than
    pyproject's bound is refused in one line rather than replaced."""
    reqs = load_script("install")
    monkeypatch.setattr(reqs.metadata, "version", lambda name: {"torch": version}[name])
    if ok:
        assert reqs.torch_constraint() == f"torch=={version}"
    else:
        with pytest.raises(SystemExit, match=rf"torch: {re.escape(version)} at .* does not meet"):
            reqs.torch_constraint()


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """`make wheels` for this Python, built once (needs the package index) and kept under .cache/."""
    folder = ROOT / ".cache" / f"wheelhouse-py{PY_VERSION}"
    wanted = "\n".join(load_script("install").requirements(["dev"])) + "\n"
    listed = folder / "requirements.txt"
    if not listed.exists() or listed.read_text() != wanted:  # none yet, or pyproject changed since
        make = ["make", "-C", str(ROOT), "wheels", f"PYTHON={sys.executable}", f"PY_VERSION={PY_VERSION}"]
        done = subprocess.run([*make, f"WHEELS={folder}"], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"could not build the wheelhouse (no package index?): {done.stderr[-300:]}")
    return folder


def _venv(path: Path, torch_version: str | None, tmp_path: Path, *flags: str) -> Path:
    """A venv at `path`, with a stand-in torch of `torch_version` installed when given."""
    subprocess.run(
        [sys.executable, "-m", "venv", *flags, str(path)], check=True, timeout=300, env=offline_env()
    )
    if torch_version is not None:
        wheel = load_script("rehearse_node").stand_in_torch_wheel(tmp_path, torch_version)
        pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", str(wheel)]
        subprocess.run(pip, check=True, timeout=300, env=offline_env())
    return path


def _install_offline(venv: Path, wheels: Path, *make_vars: str) -> subprocess.CompletedProcess:
    make = ["make", "-C", str(ROOT), "install-offline", f"VENV={venv}", f"WHEELS={wheels}", *make_vars]
    return subprocess.run(make, capture_output=True, text=True, timeout=900, env=offline_env())


@pytest.mark.slow
def test_install_offline_keeps_the_nodes_torch(wheelhouse: Path, tmp_path: Path) -> None:
    """A node's Python that is itself a venv holding torch 2.4.0 (a stand-in for its CUDA build, as in
    images with /opt/.../.venv): make install-offline VENV_FLAGS=--system-site-packages makes .venv on
    top of it, installs every other dependency from the wheel folder with no index, and leaves torch be."""
    node = _venv(tmp_path / "node", "2.4.0", tmp_path)
    venv = tmp_path / "venv"
    node_python = f"PYTHON={node / 'bin' / 'python'}"
    done = _install_offline(venv, wheelhouse, node_python, "VENV_FLAGS=--system-site-packages")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "--no-index" in done.stdout
    assert (venv / "torch-constraint.txt").read_text().strip() == "torch==2.4.0"
    check = (
        "import torch, hydra, omegaconf, wandb, datasets, scipy, matplotlib, filelock, harness.config;"
        "print(torch.__version__, torch.__file__, harness.config.__file__)"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    version, torch_file, harness_file = out.stdout.split()
    assert version == "2.4.0" and Path(torch_file).is_relative_to(node)  # the node's, not a new one
    assert not list(venv.glob("lib/*/site-packages/torch"))
    assert Path(harness_file).is_relative_to(ROOT)  # editable: the checkout itself
    assert not list(wheelhouse.glob("torch-*.whl")) and not list(wheelhouse.glob("nvidia_*.whl"))


@pytest.mark.slow
def test_install_offline_without_torch_says_what_to_do(wheelhouse: Path, tmp_path: Path) -> None:
    venv = _venv(tmp_path / "venv", None, tmp_path)
    done = _install_offline(venv, wheelhouse)
    assert done.returncode != 0
    assert "error: no torch in" in done.stdout + done.stderr
    assert "VENV_FLAGS=--system-site-packages" in done.stdout + done.stderr
    assert not (venv / ".installed").exists()


def test_install_offline_without_a_wheel_folder_fails_in_one_line(tmp_path: Path) -> None:
    done = _install_offline(tmp_path / "venv", tmp_path / "missing")
    assert done.returncode != 0
    assert f"error: WHEELS={tmp_path / 'missing'}: no such folder; build one with make wheels" in done.stdout
    assert not (tmp_path / "venv").exists()


# --- make node-wheels: only what the node lacks


def _meta(version: str, *requires: str) -> dict:
    return {"version": version, "requires_dist": list(requires)}


def test_node_wheels_keep_what_the_node_lacks_and_the_versions_it_has_that_are_excluded() -> None:
    """The rehearsal's fault: datasets pins an old fsspec, which the node has newer; the folder must carry
    that fsspec, and what its asked-for extra needs at a version the node lacks, and nothing the node has
    at a version every requirement accepts."""
    nw = load_script("node_wheels")
    resolved = {
        "datasets": _meta("4.0.0", "fsspec[http]<=2025.3.0,>=2023.1.0", "numpy>=1.17", "pandas"),
        "fsspec": _meta("2025.3.0", "aiohttp>=3.10; extra == 'http'", "pytest; extra == 'test'"),
        "aiohttp": _meta("3.12.0"),
        "numpy": _meta("2.5.5"),
        "pandas": _meta(
            "3.1.1", "numpy>=2.6; python_version >= '3.13'"
        ),  # not for 3.12: the node's numpy stays
        "setuptools": _meta("84.0.0"),
        "wheel": _meta("0.48.0"),
        "torch": _meta("2.13.0"),
    }
    node = {"fsspec": "2026.9.0", "aiohttp": "3.9.5", "numpy": "2.5.2", "pandas": "3.0.0",
            "setuptools": "80.0", "pytest": "7.0", "torch": "2.11.0"}  # fmt: skip
    kept = nw.keep(resolved, node, ["datasets>=2.20", "numpy>=1.26"], ["setuptools>=68", "wheel"], "3.12")
    assert kept == {
        "aiohttp": "3.12.0",  # fsspec[http] asks >= 3.10 of it; the node has 3.9.5
        "datasets": "4.0.0",  # the node lacks it
        "fsspec": "2025.3.0",  # excluded by datasets' pin
        "setuptools": "84.0.0",  # the build backend: pip builds in isolation, from the folder alone
        "wheel": "0.48.0",
    }


def test_node_wheels_refuse_a_freeze_list_line_that_is_not_name_and_version(tmp_path: Path, capsys) -> None:
    nw = load_script("node_wheels")
    good = tmp_path / "good.txt"
    good.write_text("# pip list --format=freeze\nNumPy==2.5.2\ntyping_extensions==4.16.0\n\n")
    assert nw.read_freeze(good) == {"numpy": "2.5.2", "typing-extensions": "4.16.0"}
    bad = tmp_path / "bad.txt"
    bad.write_text("numpy==2.5.2\ntorch @ file:///wheels/torch-2.11.0-cp312.whl\n")
    with pytest.raises(SystemExit) as stop:
        nw.read_freeze(bad)
    assert stop.value.code == 2
    assert (
        "bad.txt:2: 'torch @ file:///wheels/torch-2.11.0-cp312.whl' is not name==version"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_the_node_rehearsal_installs_from_a_folder_within_64_mib_with_no_index(tmp_path: Path) -> None:
    """scripts/rehearse_node.py on this machine's Python with its real CPU torch (the smoke sweep runs
    on it): the emulated node, make node-wheels (within 64 MiB), make install-offline with no index,
    torch the node's. Needs the package index (skipped without one)."""
    torch_wheel = next(Path("/opt/wheels").glob(f"torch-*-cp{PY_VERSION.replace('.', '')}-*.whl"), None)
    if torch_wheel is None:
        pytest.skip("no local torch wheel for this Python")
    argv = [sys.executable, str(ROOT / "scripts" / "rehearse_node.py"), "--python", sys.executable,
            "--torch", str(torch_wheel), "--unpinned", "--work", str(tmp_path)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 and "step=node packages" in done.stdout:
        pytest.skip(f"could not install the node's packages (no package index?): {done.stderr[-300:]}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    facts = {k: v for row in done.stdout.splitlines() for k, v in (w.split("=", 1) for w in row.split()[1:])}
    assert float(facts["size_mib"]) <= 64 and facts["within"] == "1"
    assert facts["torch_from_node"] == "1" and facts["torch"] == "2.13.0+cpu"
    assert facts["compose"] == "gpu_smoke"
    assert facts["runs"] == facts["done"] == "9" and facts["fit"] == "1"
