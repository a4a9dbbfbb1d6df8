"""python -m harness.studies.compare DIR: compare an experiment's variants again (harness.studies.compare)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.studies.compare.experiment import print_comparison


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.studies.compare", description=__doc__)
    parser.add_argument("dir", type=Path, help="experiment directory, e.g. runs/exp-architecture")
    parser.add_argument("--reference", default="", help="reference variant (default: experiment.json's)")
    parser.add_argument("--reference-dir", default="", help="its sweep directory, when not under DIR")
    args = parser.parse_args(argv)
    return print_comparison(args.dir, args.reference, args.reference_dir)


if __name__ == "__main__":
    sys.exit(main())
