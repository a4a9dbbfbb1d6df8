"""python -m harness.blob: every seed claim of the big blob of compute, in one report (docs/blob.md).

    python -m harness.blob                         # train what is missing, judge, write runs/blob/
    python -m harness.blob blob.dry_run=true       # the plan and its time; writes nothing
    python -m harness.blob sweep=gpu               # the same at gpu scale (hours on one H100)
    python -m harness.blob logger=off              # any sweep override applies to every part

A second run trains nothing new; Ctrl-C stops with one line, and the rerun continues.
"""

from __future__ import annotations

import sys

from harness.config import ConfigError
from harness.overrides import check_overrides

BLOB_KEYS = ("blob.dry_run",)


def parse(argv: list[str]) -> tuple[bool, tuple[str, ...]]:
    """(dry_run, the overrides every part gets); ConfigError (one line) on a bad argument."""
    dry_run, overrides = False, []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if key == "blob.dry_run" and eq:
            if value.lower() not in ("true", "false"):
                raise ConfigError(f"blob.dry_run: {value!r}; allowed: true, false")
            dry_run = value.lower() == "true"
        elif key.startswith("blob."):
            raise ConfigError(f"{key}: unknown; allowed: {', '.join(BLOB_KEYS)}")
        else:
            overrides.append(arg)
    from harness.compose import CONFIG_DIR

    check_overrides(overrides, CONFIG_DIR, path_key="sweep.dir")
    if any(o.startswith("sweep=") and o not in ("sweep=cpu", "sweep=gpu") for o in overrides):
        raise ConfigError("sweep: the blob plans its own sweeps; allowed: sweep=cpu (default) or sweep=gpu")
    return dry_run, tuple(overrides)


def main() -> None:
    from harness.studies.blob.parts import plan_parts
    from harness.studies.blob.run import run_blob
    from harness.sweep import Interrupted

    try:
        dry_run, overrides = parse(sys.argv[1:])
        run_blob(plan_parts(overrides), dry_run=dry_run)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (Interrupted, KeyboardInterrupt):
        print("interrupted: the blob stopped; rerun the same command to continue", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
