"""Helpers of `make install`, `make install-offline` and `make wheels` (see the Makefile and docs/gpu.md).

    python scripts/install.py requirements [EXTRAS]   # pyproject's dependencies (+ extras) without torch
    python scripts/install.py build-requirements      # what building the harness needs (its backend)
    python scripts/install.py torch-constraint        # torch==<this interpreter's torch>, checked
    python scripts/install.py inherit VENV            # VENV also sees this interpreter's venv's packages

torch is left out of the wheels because a GPU node brings its own CUDA build (and torch's wheels bring
their CUDA libraries, gigabytes); `make install` pins whatever torch the interpreter has as a pip
constraint, so installing the rest can never replace it. A node's Python is often itself a venv (an
image's /opt/.../.venv): `python -m venv --system-site-packages` from it sees the base interpreter's
packages, not that venv's, so `inherit` adds the venv's site-packages to the new one through a .pth file.
"""

from __future__ import annotations

import site
import sys
from importlib import metadata
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib

from pip._vendor.packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = {"torch"}  # with their CUDA libraries, the node's own


def requirements(extras: list[str], pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The project's dependencies plus those of `extras`, less LEFT_OUT; an unknown extra is an error."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"extras: unknown {', '.join(unknown)}; allowed: {', '.join(optional) or 'none'}")
    lines = [*project["dependencies"], *(r for e in extras for r in optional[e])]
    return [r for r in lines if Requirement(r).name.lower() not in LEFT_OUT]


def build_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """What the offline editable install builds the harness with: pyproject's build backend, and wheel
    (older setuptools ask for it): pip builds in an isolated environment, from the wheel folder alone."""
    return [*tomllib.loads(pyproject.read_text())["build-system"]["requires"], "wheel"]


def torch_constraint(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """`torch==<version>` of the torch installed for this interpreter (as pip sees it: its metadata,
    without importing it), after checking it meets pyproject's torch bound (pre-releases count: NGC
    images ship torch versions like 2.6.0a0+ecf3bae)."""
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        raise SystemExit(f"torch: no installed distribution visible to {sys.executable}") from None
    deps = [Requirement(r) for r in tomllib.loads(pyproject.read_text())["project"]["dependencies"]]
    bound = next(r for r in deps if r.name == "torch")
    if not bound.specifier.contains(version, prereleases=True):
        raise SystemExit(f"torch: {version} at {sys.executable} does not meet the harness's {bound}")
    return f"torch=={version}"


def inherit(venv: Path) -> Path | None:
    """Make `venv` (made from this interpreter) see this interpreter's own venv's packages, after its
    own: a .pth file listing them. None when this interpreter is no venv (--system-site-packages does it)."""
    if sys.prefix == sys.base_prefix:
        return None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    pth = venv / "lib" / version / "site-packages" / "_inherited_env.pth"
    pth.write_text("\n".join(site.getsitepackages()) + "\n")
    return pth


if __name__ == "__main__":
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "requirements":
        print("\n".join(requirements([e for arg in args for e in arg.split(",") if e])))
    elif command == "build-requirements":
        print("\n".join(build_requirements()))
    elif command == "torch-constraint":
        print(torch_constraint())
    elif command == "inherit" and len(args) == 1:
        inherit(Path(args[0]))
    else:
        raise SystemExit(
            "usage: install.py requirements [EXTRAS] | build-requirements | torch-constraint | inherit VENV"
        )
