"""The verdict on one variant from its paired test, by rules fixed before the runs (`Rules`).

For each of offset, slope and top gap (harness.studies.compare.paired):
    effect       its (1 - level/3) interval excludes 0 and the estimate is at least the smallest
                 effect worth reporting (min_offset, min_slope, min_top): three tests, Bonferroni
    equivalent   both one-sided tests against -min and +min reject at `level` (TOST): its (1 - 2 level)
                 interval lies inside (-min, +min)
The variant's verdict, first that applies:
    'changes at the top'   the top gap is an effect and the differences are not a line in ln C (lack
                           of fit below lof_level) with the gap widening faster and faster towards
                           the top (slope and curvature of the top gap's sign: damage concentrated
                           at the top), or the top gap is the only effect
    'changes the slope'    the slope is an effect
    'changes the offset'   the offset is an effect
    'no effect'            offset, slope and top gap are all equivalent to 0
    'inconclusive'         anything else: the data can neither show an effect nor rule one out
with a direction (the variant is worse/better at the top; shallower/steeper; worse/better; and whether
d is a line in ln C). The rule's error rates on simulated truth are measured by
harness.studies.compare.calibrate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.stats import PairedTest, is_effect, is_equivalent


@dataclass(frozen=True)
class Rules:
    """The comparison's decision rules, fixed before the experiments ran and recorded in each experiment's
    experiment.json before its runs. The smallest effects worth reporting are ln-loss ratios (0.01 ~ 1% in
    loss) and a change of the exponent; the top budget's is wider because only the seeds of one budget
    measure it (one paired difference's noise was ~1.5% in a 3-seed pilot on the ladder)."""

    min_offset: float = 0.01  # ln-loss ratio at the middle of the shared compute (~1% in loss)
    min_slope: float = 0.01  # d ln(L ratio) / d ln C: 0.01 in the frontier's exponent
    min_top: float = 0.02  # ln-loss ratio at the largest shared budget
    level: float = 0.05  # effects: each of offset, slope, top tested at level / 3; equivalence: TOST at level
    lof_level: float = 0.01  # the line's lack of fit, below which the difference is not a line in ln C
    ci: float = 0.95  # level of the intervals shown


TOP, SLOPE, OFFSET, NONE, INCONCLUSIVE = (
    "changes at the top",
    "changes the slope",
    "changes the offset",
    "no effect",
    "inconclusive",
)
EFFECTS = (TOP, SLOPE, OFFSET)  # strongest first
QUANTITIES = ("offset", "slope", "top")


@dataclass(frozen=True)
class Judgement:
    verdict: str
    direction: str  # '' for no effect / inconclusive
    effects: dict[str, bool]  # per quantity: an effect
    equivalent: dict[str, bool]  # per quantity: shown smaller than the smallest effect
    nonlinear: bool  # lack of fit of the line below lof_level

    @property
    def sentence(self) -> str:
        return f"{self.verdict} ({self.direction})" if self.direction else self.verdict


def judge(t: PairedTest, rules: Rules) -> Judgement:
    """The verdict of the module docstring."""
    smallest = {"offset": rules.min_offset, "slope": rules.min_slope, "top": rules.min_top}
    est = {"offset": t.offset, "slope": t.slope, "top": t.top}
    effects = {q: is_effect(est[q], smallest[q], rules.level / 3) for q in QUANTITIES}
    equivalent = {q: is_equivalent(est[q], smallest[q], rules.level) for q in QUANTITIES}
    nonlinear = bool(math.isfinite(t.lack_of_fit_p) and t.lack_of_fit_p < rules.lof_level)
    worse = "worse" if t.top.value > 0 else "better"
    shape = "; d is not a line in ln C" if nonlinear else ""
    # damage concentrated at the top: the gap widens towards the top, faster and faster
    accelerates = t.top.value * t.slope.value > 0 and t.top.value * t.curvature > 0
    if effects["top"] and ((nonlinear and accelerates) or not (effects["slope"] or effects["offset"])):
        return Judgement(TOP, f"{worse} at the top{shape}", effects, equivalent, nonlinear)
    if effects["slope"]:
        how = "shallower" if t.slope.value > 0 else "steeper"
        return Judgement(SLOPE, f"{how}, {worse} at the top{shape}", effects, equivalent, nonlinear)
    if effects["offset"]:
        way = "worse" if t.offset.value > 0 else "better"
        return Judgement(OFFSET, f"{way}{shape}", effects, equivalent, nonlinear)
    verdict = NONE if all(equivalent.values()) else INCONCLUSIVE
    return Judgement(verdict, "", effects, equivalent, nonlinear)


def ingredient_verdict(verdicts: list[str]) -> str:
    """The experiment's verdict: the strongest effect among its variants; no effect only when every
    variant shows none; else inconclusive."""
    for v in EFFECTS:
        if v in verdicts:
            return v
    return NONE if verdicts and all(v == NONE for v in verdicts) else INCONCLUSIVE
