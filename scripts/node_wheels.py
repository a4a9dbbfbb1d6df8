"""`make node-wheels`: a wheel folder that travels to a node without network, holding only what it lacks.

    python scripts/node_wheels.py FREEZE WHEELS --python-version 3.12 --platform manylinux2014_x86_64 \
        --platform manylinux_2_28_x86_64 [--extras dev] [--limit-mib 64]

FREEZE is the node's `python3 -m pip list --format=freeze` (name==version lines). Three pip calls:
  1. build the dependencies published only as source (--sdist: hydra's parser) into wheels in WHEELS;
  2. resolve the harness's requirements (`install.py requirements`, torch left out) and the offline
     editable install's build backend for the node's Python and platform tags, with the node's versions
     as constraints (as the node's pip keeps what is installed), downloading no wheel (`pip install
     --dry-run --report`); when no resolution keeps them all, without them;
  3. download what the node must get (`keep`): every resolved package it lacks, and each it has at a
     version that a requirement of the harness or of a package it gets excludes (datasets pinning an old
     fsspec, say), plus the build backend (pip builds in an isolated environment that sees none of the
     node's packages).
Every other wheel in WHEELS is removed; the folder's size is printed as `node-wheels key=value` and
checked against --limit-mib (64: what the device tool carries). Exit 1 when over it, 2 on a bad
FREEZE line. On the node: `make install-offline WHEELS=... VENV_FLAGS=--system-site-packages EXTRAS=`.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename

sys.path.insert(0, str(Path(__file__).parent))
from install import LEFT_OUT, build_requirements, requirements  # noqa: E402

FREEZE_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def read_freeze(path: Path) -> dict[str, str]:
    """{canonical name: version} of a `pip list --format=freeze` file; SystemExit(2) on another line."""
    out = {}
    for n, row in enumerate(path.read_text().splitlines(), 1):
        row = row.strip()
        if not row or row.startswith("#"):
            continue
        match = FREEZE_LINE.match(row)
        if match is None:
            print(
                f"error: {path}:{n}: {row!r} is not name==version; make the list with "
                "`python3 -m pip list --format=freeze` on the node",
                file=sys.stderr,
            )
            raise SystemExit(2)
        out[canonicalize_name(match[1])] = match[2]
    return out


def marker_env(python_version: str) -> dict[str, str]:
    """The environment markers of a CPython `python_version` on x86-64 Linux (the platforms we target)."""
    return {
        "python_version": python_version, "python_full_version": f"{python_version}.0", "os_name": "posix",
        "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "platform_release": "", "platform_version": "", "implementation_version": f"{python_version}.0",
    }  # fmt: skip


def applies(req: Requirement, env: dict[str, str], extras: set[str]) -> bool:
    """Whether `req` is needed in `env` by a package installed with `extras`."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**env, "extra": e}) for e in extras | {""})


def keep(
    resolved: dict[str, dict], node: dict[str, str], top: list[str], build: list[str], python_version: str
) -> dict[str, str]:
    """{name: version} of the resolved packages the node must get: those it lacks, the build backend
    (`build`), and, until nothing changes, each it has at a version excluded by the harness's
    requirements (`top`) or by those of a package it gets. `resolved`: name -> the resolver report's
    metadata of the package (version, requires_dist)."""
    env = marker_env(python_version)
    built = {canonicalize_name(Requirement(r).name) for r in build}
    kept = {n for n in resolved if n not in node or n in built} - LEFT_OUT
    asked: dict[str, set[str]] = {}  # the extras requirements ask of each package
    while True:
        before = (set(kept), {n: set(e) for n, e in asked.items()})
        needs = [(Requirement(r), set()) for r in top]
        needs += [
            (Requirement(r), asked.get(n, set()))
            for n in kept
            for r in resolved[n].get("requires_dist") or []
        ]
        for req, extras in needs:
            if not applies(req, env, extras):
                continue
            name = canonicalize_name(req.name)
            asked.setdefault(name, set()).update(req.extras)
            if name in node and name in resolved and not req.specifier.contains(node[name], prereleases=True):
                kept.add(name)
        kept -= LEFT_OUT
        if (kept, asked) == before:
            return {n: resolved[n]["version"] for n in sorted(kept)}


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def resolve(args: list[str], folder: Path, constraints: Path | None) -> dict[str, dict] | None:
    """{name: metadata} of what `pip install ARGS` would install into an empty environment (downloading
    no wheel: PyPI serves their metadata apart), under `constraints`; None when pip finds no resolution.
    (--target: older pips take platform options only with it; a dry run writes nothing there.)"""
    report = folder / "resolved.json"
    pinned = ["-c", str(constraints)] if constraints else []
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed", "--report",
         str(report), "--target", str(folder / "unused"), *pinned, *args],
    )  # fmt: skip
    if done.returncode != 0:
        return None
    items = json.loads(report.read_text())["install"]
    report.unlink()
    return {canonicalize_name(i["metadata"]["name"]): i["metadata"] for i in items}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("freeze", type=Path)
    ap.add_argument("wheels", type=Path)
    ap.add_argument("--python-version", required=True)
    ap.add_argument("--platform", action="append", required=True)
    ap.add_argument("--extras", default="")
    ap.add_argument("--sdist", action="append", default=[], help="a dependency published only as source")
    ap.add_argument("--limit-mib", type=float, default=64)
    args = ap.parse_args(argv)
    if not args.freeze.is_file():
        print(f"error: NODE_FREEZE={args.freeze}: no such file; on the node: "
              "python3 -m pip list --format=freeze > node.txt", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    node = read_freeze(args.freeze)
    folder = args.wheels
    folder.mkdir(parents=True, exist_ok=True)
    top = requirements([e for e in args.extras.split(",") if e])
    target = ["--only-binary=:all:", "--python-version", args.python_version, "--implementation", "cp"]
    target += [f"--platform={p}" for p in args.platform]
    build = build_requirements()
    if args.sdist:
        pip("wheel", "-q", "--no-deps", "--use-pep517", "-w", str(folder), *args.sdist)
    pins = folder / "node-pins.txt"  # the node's versions as constraints: resolve as the node would
    pins.write_text("".join(f"{n}=={v}\n" for n, v in node.items() if n not in LEFT_OUT))
    resolved = resolve([*target, "--find-links", str(folder), *top, *build], folder, pins)
    if resolved is None:
        print("node-wheels note=\"no resolution keeps every version the node has; resolving without them, "
              "and getting each excluded one\"")  # fmt: skip
        resolved = resolve([*target, "--find-links", str(folder), *top, *build], folder, None)
    pins.unlink()
    if resolved is None:
        raise SystemExit("error: pip found no resolution of the harness's requirements for this target")
    kept = keep(resolved, node, top, build, args.python_version)
    pip("download", "-q", "--no-deps", *target, "--find-links", str(folder), "-d", str(folder),
        *(f"{n}=={v}" for n, v in kept.items()))  # fmt: skip
    wheels = []
    for path in sorted(folder.glob("*.whl")):
        name, version, *_ = parse_wheel_filename(path.name)
        if kept.get(name) == str(version):
            wheels.append(path)
        else:
            path.unlink()  # an earlier build's, or what the node has
    size = sum(p.stat().st_size for p in wheels) / 2**20
    facts = {
        "folder": folder, "wheels": len(wheels), "size_mib": f"{size:.1f}",
        "limit_mib": f"{args.limit_mib:g}", "python": args.python_version, "node_packages": len(node),
        "also_on_node": ",".join(n for n in kept if n in node),  # versions it lacks, or the build backend
    }  # fmt: skip
    print("node-wheels", " ".join(f"{k}={v}" for k, v in facts.items()))
    if size > args.limit_mib:
        largest = sorted(wheels, key=lambda p: -p.stat().st_size)[:5]
        print(
            f"error: {size:.1f} MiB of wheels, over the limit of {args.limit_mib:g} MiB; largest: "
            + ", ".join(f"{p.name} ({p.stat().st_size / 2**20:.1f} MiB)" for p in largest),
            file=sys.stderr,
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
