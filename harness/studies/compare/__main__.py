"""python -m harness.studies.compare dir=EXP_DIR [reference=NAME] [reference_dir=DIR]: compare an
experiment's variants again (rules and reference from its experiment.json) and print the summary."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.config import ConfigError
from harness.studies.args import key_values
from harness.studies.compare.experiment import print_comparison


def main(argv: list[str]) -> int:
    try:
        args = key_values(argv, required=("dir",), optional=("reference", "reference_dir"))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    return print_comparison(Path(args["dir"]), args.get("reference", ""), args.get("reference_dir", ""))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
