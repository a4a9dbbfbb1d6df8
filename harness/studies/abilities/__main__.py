"""python -m harness.studies.abilities dir=SWEEP_DIR: study a finished sweep's abilities."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.config import ConfigError
from harness.studies.abilities import study_abilities, summary_line
from harness.studies.args import key_values


def main(argv: list[str]) -> int:
    try:
        sweep_dir = Path(key_values(argv, required=("dir",))["dir"])
        if not (sweep_dir / "sweep.json").exists():
            raise ConfigError(f"dir: {sweep_dir} holds no sweep (no sweep.json)")
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(summary_line(study_abilities(sweep_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
