"""The harness's requirements from pyproject.toml, for `make wheels` and `make install`.

    python scripts/requirements.py                    # the dependencies without torch, one per line
    python scripts/requirements.py dev                # and the `dev` extra's
    python scripts/requirements.py --torch-constraint # torch==<this interpreter's torch>, checked

torch is left out of the wheels because a GPU node brings its own CUDA build (and torch's wheels bring
their CUDA libraries, gigabytes); `make install` pins whatever torch the interpreter has as a pip
constraint, so installing the rest can never replace it.
"""

from __future__ import annotations

import sys
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


def torch_constraint(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """`torch==<version>` of this interpreter's torch, after checking it meets pyproject's torch bound
    (pre-releases count: NGC images ship torch versions like 2.6.0a0+ecf3bae)."""
    try:
        import torch
    except ImportError:
        raise SystemExit(f"torch: none importable by {sys.executable}") from None
    deps = [Requirement(r) for r in tomllib.loads(pyproject.read_text())["project"]["dependencies"]]
    bound = next(r for r in deps if r.name == "torch")
    if not bound.specifier.contains(torch.__version__, prereleases=True):
        raise SystemExit(
            f"torch: {torch.__version__} at {sys.executable} does not meet the harness's {bound}"
        )
    return f"torch=={torch.__version__}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--torch-constraint"]:
        print(torch_constraint())
    else:
        print("\n".join(requirements([e for arg in sys.argv[1:] for e in arg.split(",") if e])))
