"""The verdict: does loss scale smoothly with compute? Four checks, each in units of the measured noise.

    frontier  a law L(C) = E + (C0/C)^alpha could be fitted through at least 4 frontier points;
    residual  its residuals are at most max_misfit noise standard deviations, root mean square
              with the degrees of freedom (sqrt(sum z^2 / (q - 3)), z = log(L / L_fit) / sigma): a
              kink or a bump shows as a misfit spread over several points;
    monotone  no budget's best loss rises above the best of every cheaper budget by more than
              max_rise_z standard deviations of the difference (sigma sqrt 2);
    holdout   the deciding law fitted without the top budgets predicts every held-out frontier point
              within max_holdout_z standard deviations of the prediction (its own spread and the
              point's noise) and within max_holdout_error relative error.
Smooth = all four pass. Checks in noise units keep the false-"no" rate the same at any noise level;
the thresholds (harness.fit.rules) are set by simulation (`harness.fit.calibration`, docs/fit.md).
Every check runs on B rows of losses at once, so the calibration judges thousands of simulated sweeps
with this code.

The checks' yes or no stands only when the calibration says this design gives it at least
min_likelihood_ratio times as often under the laws it names (smooth for yes, bent for no) as under the
others (`weigh`); below that it carries too little information and the verdict is "untested".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from harness.fit.budgets import Budgets
from harness.fit.frontier import FrontierPoints
from harness.fit.holdout import Predictions
from harness.fit.laws import power_law_values
from harness.fit.rules import FitRules

CHECKS = ("frontier", "residual", "monotone", "holdout")


@dataclass(frozen=True)
class CheckValues:
    """Each check's number and outcome for B rows."""

    fitted: np.ndarray  # (B,) the frontier law could be fitted
    misfit: np.ndarray  # RMS standardised residual of the frontier fit, dof-corrected
    rise_z: np.ndarray  # largest standardised rise of a budget's best loss over cheaper budgets
    rise: np.ndarray  # that rise as a relative change of the loss
    rise_at: np.ndarray  # at which budget (index), -1 without 2 budgets
    holdout_z: np.ndarray
    holdout_error: np.ndarray
    holdout_ok: np.ndarray  # the deciding law could predict
    passed: dict[str, np.ndarray]

    @property
    def smooth(self) -> np.ndarray:
        return np.all([self.passed[c] for c in CHECKS], axis=0)


def budget_best(Y: np.ndarray, sigma: np.ndarray, fp: FrontierPoints, budgets: Budgets) -> tuple:
    """(B, k) each budget's best loss and its noise: the frontier's budget points with IsoFLOP
    budgets, else the best point of each budget group."""
    if fp.by_budget:
        return fp.Y, fp.sigma
    k = len(budgets.labels)
    best = np.stack([np.argmin(Y[:, budgets.members(g)], axis=1) for g in range(k)], axis=1)
    idx = np.stack([budgets.members(g)[best[:, g]] for g in range(k)], axis=1)
    return np.take_along_axis(Y, idx, axis=1), sigma[idx]


def run_checks(
    fp: FrontierPoints,
    frontier: tuple[np.ndarray, np.ndarray],
    best: tuple[np.ndarray, np.ndarray],
    holdout: Predictions | None,
    th: FitRules,
) -> CheckValues:
    """The four checks for every row; frontier = (params (B, 3), ok (B,)) of the offset law through
    each row's frontier points; best = `budget_best`; holdout: the deciding law's predictions."""
    params, fitted = frontier
    B = fp.Y.shape[0]
    with np.errstate(all="ignore"):
        z = np.log(fp.Y / power_law_values(params, fp.x)) / fp.sigma
        dof = np.maximum((fp.W > 0).sum(axis=1) - 3, 1)
        misfit = np.where(fitted, np.sqrt(np.where(fp.W > 0, z * z, 0.0).sum(axis=1) / dof), np.inf)
    L, s = best
    if L.shape[1] >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):  # a drawn loss <= 0: nan, so its row fails
            logL = np.log(L)
        run_min = np.minimum.accumulate(logL, axis=1)[:, :-1]
        arg = np.maximum.accumulate(np.where(logL[:, :-1] == run_min, np.arange(L.shape[1] - 1), 0), axis=1)
        s_prev = np.take_along_axis(s, arg, axis=1)
        rise_log = logL[:, 1:] - run_min
        rz = rise_log / np.sqrt(s[:, 1:] ** 2 + s_prev**2)
        j = np.argmax(rz, axis=1)
        rise_z = rz[np.arange(B), j]
        rise = np.expm1(rise_log[np.arange(B), j])
        rise_at = j + 1
    else:
        rise_z = rise = np.full(B, -np.inf)
        rise_at = np.full(B, -1)
    if holdout is None:
        h_ok = np.zeros(B, dtype=bool)
        hz = herr = np.full(B, np.inf)
    else:
        h_ok, hz, herr = holdout.ok, holdout.max_z, holdout.max_rel_error
    passed = {
        "frontier": fitted,
        "residual": fitted & (misfit <= th.max_misfit),
        "monotone": rise_z <= th.max_rise_z,
        "holdout": h_ok & (hz <= th.max_holdout_z) & (herr <= th.max_holdout_error),
    }
    return CheckValues(fitted, misfit, rise_z, rise, rise_at, hz, herr, h_ok, passed)


@dataclass(frozen=True)
class Verdict:
    """Does loss scale smoothly with compute? Each check is a sentence with its numbers."""

    smooth: bool  # all four checks passed
    outcome: str  # yes | no | untested (a check could not run, or the design cannot support the checks)
    sentence: str  # 'loss scales smoothly with compute: yes/no/untested, because ...'
    reasons: tuple[str, ...]  # every check's sentence
    checks: dict[str, bool] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)
    checked: str = ""  # what the checks alone say: yes | no | untested (a check could not run)
    likelihood_ratio: float | None = None  # of the checks' yes/no on this design (`weigh`); None: unweighed
    untested_why: str = ""  # why the outcome is untested; '' otherwise


def judge(
    v: CheckValues,
    th: FitRules,
    *,
    n_frontier: int,
    budget_labels: tuple[str, ...],
    noise: str,
    holdout: str,
    holdout_failed: str = "",
    skipped: dict[str, str],
) -> Verdict:
    """Row 0 of the checks as sentences. noise: the noise level's phrase; holdout: what was held out
    and which law decides ('' when no hold-out was possible); holdout_failed: why that law could not
    predict."""
    ok = {c: bool(v.passed[c][0]) for c in CHECKS}
    sentences = {}
    if ok["frontier"]:
        sentences["frontier"] = f"a frontier law L(C) = E + (C0/C)^alpha fits its {n_frontier} points"
        sentences["residual"] = (
            f"its residuals are {v.misfit[0]:.2f} noise standard deviations (root mean square; allowed "
            f"{th.max_misfit:g}; noise: {noise})"
        )
    else:
        why = skipped.get("frontier", "the fit did not converge")
        sentences["frontier"] = f"no compute frontier could be fitted ({why})"
        sentences["residual"] = "there is no frontier fit to measure residuals against"
    if v.rise_at[0] < 0:
        sentences["monotone"] = "there is a single budget, so the best loss cannot fail to improve"
    else:
        at = budget_labels[int(v.rise_at[0])]
        word = "improves with every larger budget" if v.rise[0] <= 0 else "is never much worse than cheaper"
        sentences["monotone"] = (
            f"the best loss {word if ok['monotone'] else 'rises'} across {len(budget_labels)} budgets "
            f"(largest change {v.rise[0]:+.2%} at {at}, {v.rise_z[0]:.2f} standard deviations; allowed "
            f"{th.max_rise_z:g})"
        )
    if not holdout:
        sentences["holdout"] = (
            f"no hold-out prediction was possible ({skipped.get('holdout', 'not attempted')})"
        )
    elif not v.holdout_ok[0]:
        sentences["holdout"] = f"{holdout} {holdout_failed or 'could not be fitted'}"
    else:
        sentences["holdout"] = (
            f"{holdout} predicts the held-out frontier within {v.holdout_error[0]:.2%} "
            f"({v.holdout_z[0]:.2f} standard deviations of the prediction; allowed "
            f"{th.max_holdout_error:.0%} and {th.max_holdout_z:g})"
        )
    smooth = all(ok.values())
    could_not_run = ({"frontier", "residual"} if not ok["frontier"] else set()) | (
        {"holdout"} if not (holdout and v.holdout_ok[0]) else set()
    )
    failed = {c for c in CHECKS if not ok[c]}
    outcome = "yes" if smooth else "untested" if failed <= could_not_run else "no"
    because = [sentences[c] for c in CHECKS if ok[c] == smooth]
    why = ""
    if outcome == "untested":
        because = [sentences[c] for c in CHECKS if c in failed] + [sentences[c] for c in CHECKS if ok[c]]
        why = "a check could not run"
    sentence = f"loss scales smoothly with compute: {outcome}, because " + "; ".join(because)
    numbers = {
        "misfit": float(v.misfit[0]),
        "rise": float(v.rise[0]),
        "rise_z": float(v.rise_z[0]),
        "holdout_z": float(v.holdout_z[0]),
        "holdout_error": float(v.holdout_error[0]),
    }
    reasons = tuple(sentences[c] for c in CHECKS)
    return Verdict(smooth, outcome, sentence, reasons, ok, numbers, checked=outcome, untested_why=why)


def likelihood_ratios(false_no: float, false_yes: float) -> dict[str, float]:
    """How many times likelier each answer of the checks is under the laws it names than under the
    others, from the calibration's error rates: yes, P(yes | smooth) / P(yes | bent) = (1 - false_no) /
    false_yes; no, P(no | bent) / P(no | smooth) = (1 - false_yes) / false_no. inf when only the named
    laws gave it, nan when no simulated law did."""

    def ratio(named: float, other: float) -> float:
        if other > 0:
            return named / other
        return math.inf if named > 0 else math.nan

    return {"yes": ratio(1 - false_no, false_yes), "no": ratio(1 - false_yes, false_no)}


def weigh(v: Verdict, false_no: float, false_yes: float, noise: float, min_ratio: float) -> Verdict:
    """The verdict as this design's calibration lets it stand (error rates at `noise`, the median
    relative noise simulated): a yes or no whose likelihood ratio is below min_ratio (or undefined)
    becomes "untested", with the rates as the reason. An untested verdict stays as it is."""
    if v.outcome == "untested":
        return v
    answer = v.outcome
    lr = likelihood_ratios(false_no, false_yes)[answer]
    if lr >= min_ratio:
        return replace(v, likelihood_ratio=lr)
    named, other = ("smooth", "bent") if answer == "yes" else ("bent", "smooth")
    p_named, p_other = (1 - false_no, false_yes) if answer == "yes" else (1 - false_yes, false_no)
    why = (
        f"this design cannot tell: at {noise:.2%} noise its checks say {answer} to a {named} law "
        f"{p_named:.1%} of the time and to a {other} one {p_other:.1%}, so a {answer} is {lr:.2f} times "
        f"likelier from a {named} law than from a {other} one (at least {min_ratio:g} needed)"
    )
    sentence = (
        f"loss scales smoothly with compute: untested, because {why}; the checks said {answer}: "
        + v.sentence.split(", because ", 1)[1]
    )
    return replace(v, outcome="untested", sentence=sentence, likelihood_ratio=lr, untested_why=why)
