"""How often the comparison's verdict is right when the truth is known: pairs of variants drawn at an
experiment's own budgets, seeds and measured noise, compared by the harness's own code.

Truths (d = ln L_variant - ln L_reference as a function of x = ln C - mean ln C of the budgets):
    'no effect'          d = 0                                        -> 'no effect'
    'offset'             d = OFFSET (the variant is 5% worse everywhere)   -> 'changes the offset'
    'slope'              d = SLOPE x (its exponent is 0.03 smaller)        -> 'changes the slope'
    'damage at the top'  d = 0 up to 2/3 of the ln C range, then rising linearly to TOP at the top
                         budget (repeated data's pattern)                  -> 'changes at the top'
Noise: each run's ln L gets a seed effect shared by that seed's budgets and its own error, drawn so
that a difference has the measured sigma_seed and sigma_run (split equally between the two variants).
The sizes are a third to a half of what the experiments measured before (README): the smallest real
effects the rule must still catch.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from harness.stats import paired_test
from harness.studies.compare.judge import NONE, OFFSET, SLOPE, TOP, Rules, judge
from harness.studies.compare.paired import Curve, pair_runs

OFFSET_SIZE = 0.05
SLOPE_SIZE = 0.03
TOP_SIZE = 0.10
TRUTHS = {"no effect": NONE, "offset": OFFSET, "slope": SLOPE, "damage at the top": TOP}
_ALPHA, _C0 = 0.137, 7.86e12  # the reference law's shape (the ladder's llama frontier); only d matters


def true_difference(truth: str, C: np.ndarray) -> np.ndarray:
    """d(C) of a truth (module docstring)."""
    x = np.log(C) - np.log(C).mean()
    if truth == "no effect":
        return np.zeros_like(x)
    if truth == "offset":
        return np.full_like(x, OFFSET_SIZE)
    if truth == "slope":
        return SLOPE_SIZE * x
    if truth == "damage at the top":
        knee = x[0] + 2 / 3 * (x[-1] - x[0])
        return TOP_SIZE * np.clip((x - knee) / (x[-1] - knee), 0, None)
    raise ValueError(f"unknown truth {truth!r}; known: {', '.join(TRUTHS)}")


def draw_curves(
    d: np.ndarray, C: np.ndarray, seeds: int, sigma_run: float, sigma_seed: float, rng: np.random.Generator
) -> tuple[Curve, Curve]:
    """A reference and a variant whose ln-loss differs by d at budgets C, with the noise of the docstring."""
    base = _ALPHA * (math.log(_C0) - np.log(C))
    zeros = np.zeros_like(C)
    out = []
    for name, shift in (("reference", 0.0), ("variant", d)):
        runs = {}
        for s in range(seeds):
            noise = rng.normal(0, sigma_seed / math.sqrt(2)) + rng.normal(0, sigma_run / math.sqrt(2), C.size)
            runs[s] = (C, np.exp(base + shift + noise), zeros)
        out.append(Curve(name, runs))
    return out[0], out[1]


def verdict_counts(
    truth: str, C: np.ndarray, seeds: int, sigma_run: float, sigma_seed: float, rules: Rules,
    draws: int, rng: np.random.Generator,
) -> Counter:  # fmt: skip
    """How often each verdict comes out over `draws` simulated experiments of one truth."""
    d = true_difference(truth, np.asarray(C, dtype=float))
    counts: Counter = Counter()
    for _ in range(draws):
        ref, var = draw_curves(d, np.asarray(C, dtype=float), seeds, sigma_run, sigma_seed, rng)
        counts[judge(paired_test(pair_runs(ref, var)), rules).verdict] += 1
    return counts


def calibrate(
    C: np.ndarray, seeds: int, sigma_run: float, sigma_seed: float, rules: Rules,
    *, draws: int = 1000, seed: int = 0,
) -> dict[str, float]:  # fmt: skip
    """Share of right verdicts for each truth at these budgets, seeds and noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for truth, right in TRUTHS.items():
        counts = verdict_counts(truth, C, seeds, sigma_run, sigma_seed, rules, draws, rng)
        out[truth] = counts[right] / draws
    return out
