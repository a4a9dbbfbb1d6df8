"""python -m harness.studies.abilities dir=SWEEP_DIR: study a finished sweep's abilities."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.studies.abilities import study_abilities, summary_line


def main(argv: list[str]) -> int:
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = [a for a in argv if "=" not in a] + [k for k in args if k != "dir"]
    if unknown or "dir" not in args:
        print(f"usage: python -m harness.studies.abilities dir=SWEEP_DIR (got {' '.join(argv) or 'nothing'})",
              file=sys.stderr)  # fmt: skip
        return 2
    sweep_dir = Path(args["dir"])
    if not (sweep_dir / "sweep.json").exists():
        print(f"dir: {sweep_dir} holds no sweep (no sweep.json)", file=sys.stderr)
        return 2
    print(summary_line(study_abilities(sweep_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
