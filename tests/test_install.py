"""Installing on a GPU node: the harness's requirements without torch, a torch already there kept, and the
offline path (`make wheels` once with an index, `make install-offline` from the folder with none)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, load_script

PY_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


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


def _fake_torch_wheel(folder: Path, version: str) -> Path:
    """A wheel named torch with only a version: stands for a node's own CUDA build, installs in a second."""
    files = {
        "torch/__init__.py": f'__version__ = "{version}"\n',
        f"torch-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"torch-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = f"torch-{version}.dist-info/RECORD"
    lines = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(text.encode())}")
    files[record] = "\n".join([*lines, f"{record},,"]) + "\n"
    path = folder / f"torch-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def _offline_env() -> dict[str, str]:
    """No pip configuration (this machine's has extra indexes and wheel folders): as on a bare node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


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
        [sys.executable, "-m", "venv", *flags, str(path)], check=True, timeout=300, env=_offline_env()
    )
    if torch_version is not None:
        wheel = _fake_torch_wheel(tmp_path, torch_version)
        pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", str(wheel)]
        subprocess.run(pip, check=True, timeout=300, env=_offline_env())
    return path


def _install_offline(venv: Path, wheels: Path, *make_vars: str) -> subprocess.CompletedProcess:
    make = ["make", "-C", str(ROOT), "install-offline", f"VENV={venv}", f"WHEELS={wheels}", *make_vars]
    return subprocess.run(make, capture_output=True, text=True, timeout=900, env=_offline_env())


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
