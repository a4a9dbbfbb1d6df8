"""The statistics every analysis shares: pure numpy/scipy, no torch, no files.

    estimates   percentile intervals of bootstrap samples; Estimate (a value, its standard error and
                degrees of freedom, Student's t intervals); is_effect and is_equivalent (TOST), the two
                tests the studies decide by
    paired      the paired two-way layout (budgets x seeds) of a variant against its reference

The fitter's bootstrap and its calibration by simulation (harness.fit) draw on estimates; the studies
(harness.studies: comparisons, abilities, the claims report) on both.
"""

from harness.stats.estimates import Estimate, is_effect, is_equivalent, percentile_interval
from harness.stats.paired import PairedTest, Pairs, TooFewBudgets, paired_test

__all__ = [
    "Estimate", "PairedTest", "Pairs", "TooFewBudgets", "is_effect", "is_equivalent", "paired_test",
    "percentile_interval",
]  # fmt: skip
