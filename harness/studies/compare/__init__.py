"""Ingredient experiments: does an ingredient change how loss scales with compute?

Each variant is paired with the reference budget by budget and seed by seed (paired), its offset,
slope and top gap are judged by rules fixed before the runs (verdict; the rules: the `compare` config
group, recorded in the experiment's experiment.json), repeated data is fitted against epochs
(repetition), the rule's right-verdict rate is measured on simulated truth at the experiment's own
noise (calibrate), and each variant's own frontier is shown as in its fit.json (frontier).
experiment reads the directories and writes comparison.md/.json/.png (report). Command line:

    python -m harness.studies.compare dir=runs/exp-architecture [reference=llama]
        [--reference-dir runs/exp-reference]
"""

from harness.studies.compare.experiment import CompareVariants, Comparison, compare_dir, print_comparison

__all__ = ["CompareVariants", "Comparison", "compare_dir", "print_comparison"]
