"""Rehearse the install on a GPU node without network, here: an emulated node, its wheel folder, the install.

    python scripts/rehearse_node.py                                  # Python 3.12, a stand-in torch 2.11.0
    python scripts/rehearse_node.py --python python3.11 --torch /opt/wheels/torch-2.13.0+cpu-...whl \
        --unpinned                                                   # a real CPU torch: the smoke sweep too

The node (`WORK/node`, a venv of --python): torch (a stand-in distribution of --torch's version that
installs in a second, or the real wheel --torch names) and the device image's packages that the harness
shares (tests/data/device_node_packages.txt, from the index; --unpinned drops their pins, which another
Python may not have). Then, as on a real node and the machine beside it:
  1. its `pip list --format=freeze`, the input of `make node-wheels`, which builds WORK/wheels for
     that Python (with the index) and checks it is at most --limit-mib;
  2. `make install-offline VENV_FLAGS=--system-site-packages EXTRAS=` from WORK/wheels into WORK/venv
     layered on the node, with no index and pip's configuration off;
  3. checks: torch the node's, unchanged (version and location); every dependency imports; the gpu_smoke
     config composes; with a real torch, `python -m harness.sweep sweep=smoke` trains and fits.
Prints `rehearsal key=value` lines; exit 1 at the first failed step, with what it printed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_PACKAGES = ROOT / "tests" / "data" / "device_node_packages.txt"
IMPORTS = "torch, hydra, omegaconf, wandb, datasets, transformers, scipy, matplotlib, filelock, tqdm"


def stand_in_torch_wheel(folder: Path, version: str) -> Path:
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
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"torch-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def offline_env() -> dict[str, str]:
    """No pip configuration (a machine's extra indexes and wheel folders): as on a bare node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def report(**fields: object) -> None:
    print("rehearsal", " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


def step(name: str, argv: list, **kw) -> subprocess.CompletedProcess:
    """Run one step; on failure print its output's end and exit 1."""
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if done.returncode != 0:
        report(step=name, rc=done.returncode)
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
        raise SystemExit(1)
    return done


def make_node(work: Path, python: str, torch: str, unpinned: bool) -> tuple[Path, str]:
    """The emulated node's venv and its torch version."""
    node = work / "node"
    shutil.rmtree(node, ignore_errors=True)
    step("node venv", [python, "-m", "venv", node])
    py = node / "bin" / "python"
    wheel = Path(torch) if torch.endswith(".whl") else stand_in_torch_wheel(work / "stand-in", torch)
    step(
        "node torch", [py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheel], env=offline_env()
    )
    packages = [r.strip() for r in NODE_PACKAGES.read_text().splitlines() if r.strip() and r[0] != "#"]
    if unpinned:
        packages = [re.split("[=<>]", p)[0] for p in packages]
    step("node packages", [py, "-m", "pip", "install", "-q", *packages])  # the index: this machine's
    version = step("node torch version", [py, "-m", "pip", "list", "--format=freeze"]).stdout
    return node, re.search(r"^torch==(\S+)$", version, re.M)[1]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default="python3.12")
    ap.add_argument("--torch", default="2.11.0", help="a stand-in torch's version, or a real torch wheel")
    ap.add_argument("--unpinned", action="store_true")
    ap.add_argument("--limit-mib", type=float, default=64)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args(argv)
    version = step("python", [args.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).stdout
    version = version.strip()
    work = args.work or ROOT / ".cache" / f"rehearsal-py{version}"
    work.mkdir(parents=True, exist_ok=True)
    node, torch_version = make_node(work, args.python, args.torch, args.unpinned)
    node_py = node / "bin" / "python"
    freeze = work / "node-freeze.txt"
    freeze.write_text(step("freeze", [node_py, "-m", "pip", "list", "--format=freeze"]).stdout)
    report(node=node, python=version, torch=torch_version, node_packages=len(freeze.read_text().splitlines()))

    wheels = work / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    built = step("node-wheels", ["make", "-C", ROOT, "node-wheels", f"PYTHON={args.python}",
                                 f"PY_VERSION={version}", f"NODE_FREEZE={freeze}", f"WHEELS={wheels}",
                                 f"LIMIT_MIB={args.limit_mib:g}"])  # fmt: skip
    (facts,) = [r for r in built.stdout.splitlines() if r.startswith("node-wheels folder=")]
    size = float(re.search(r"size_mib=(\S+)", facts)[1])
    report(wheels=wheels, size_mib=size, limit_mib=args.limit_mib, within=int(size <= args.limit_mib))

    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    make = ["make", "-C", ROOT, "install-offline", f"VENV={venv}", f"WHEELS={wheels}", f"PYTHON={node_py}"]
    install = step(
        "install-offline", [*make, "VENV_FLAGS=--system-site-packages", "EXTRAS="], env=offline_env()
    )
    if "--no-index" not in install.stdout:
        report(step="install-offline", error="pip was not told --no-index")
        raise SystemExit(1)
    py = venv / "bin" / "python"
    where = step(
        "imports", [py, "-c", f"import {IMPORTS}, harness.config; print(torch.__version__, torch.__file__)"]
    )
    got_version, torch_file = where.stdout.split()
    unchanged = got_version == torch_version and Path(torch_file).is_relative_to(node)
    report(installed=venv, torch=got_version, torch_from_node=int(unchanged), imports="ok")
    if not unchanged:
        raise SystemExit(1)
    compose = (
        "from hydra import compose, initialize_config_dir; from harness.config import register_configs; "
        f"register_configs(); initialize_config_dir(config_dir='{ROOT / 'configs'}', version_base='1.3'); "
        "print(compose(config_name='config', overrides=['sweep=gpu_smoke']).sweep.name)"
    )
    report(compose=step("compose", [py, "-c", compose]).stdout.strip())
    if args.torch.endswith(".whl"):  # a real torch: the smoke sweep, end to end
        smoke = work / "smoke"
        shutil.rmtree(smoke, ignore_errors=True)
        env = {**offline_env(), "MPLBACKEND": "Agg", "WANDB_MODE": "disabled"}
        step(
            "smoke",
            [py, "-m", "harness.sweep", "sweep=smoke", "logger=off", f"sweep.dir={smoke}"],
            cwd=work,
            env=env,
        )
        rows = (smoke / "results.csv").read_text().splitlines()[1:]
        report(
            smoke=smoke,
            runs=len(rows),
            done=sum(",done," in r for r in rows),
            fit=int((smoke / "fit.json").exists()),
        )


if __name__ == "__main__":
    main(sys.argv[1:])
