"""The seed claims of the big blob, each judged from finished results by the rule docs/blob.md fixed
before any blob ran. Pure: reads the parts' fit.json, comparison.json and abilities.json as dicts.

A `Claim` is one row of the report: what is claimed, how it is tested, the verdict (yes / no /
untested / inconclusive), whether that agrees with the claim, a number with its 95% interval, the
verdict's calibrated error rate on its own design, and the evidence file. `judge_claims` makes every row
of one realization; `combine` sets a row's verdict to `unstable` where the two realizations disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

YES, NO, UNTESTED, INCONCLUSIVE, UNSTABLE = "yes", "no", "untested", "inconclusive", "unstable"
EFFECTS = {  # a comparison's effect verdict -> the simulated truth it names (its calibration's key)
    "changes at the top": "damage at the top", "changes the slope": "slope", "changes the offset": "offset",
}  # fmt: skip
NO_EFFECT = "no effect"
PROPORTION_WIDTH = 0.3  # claim 3: a's interval must hold 0.5 and be at most this wide for a yes
SOURCES = ("synthetic", "text")


@dataclass(frozen=True)
class Claim:
    """One row of the claims table."""

    key: str  # e.g. "1/synthetic"
    claim: str
    test: str
    verdict: str
    agrees: str  # yes | no | untested | inconclusive (unstable once combined)
    number: str  # what `value` is, e.g. "alpha"
    value: float | None
    interval: tuple[float, float] | None
    error_rate: str  # e.g. "false yes 2.2%", or "not calibrated: ..."
    evidence: str
    second: str = ""  # the second realization's verdict, once combined
    second_value: float | None = None  # and its number
    second_interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class Results:
    """One realization's finished outputs: fit.json per sweep source, comparison.json per experiment,
    the abilities study's abilities.json, and where each came from (the evidence column)."""

    fits: Mapping[str, dict]  # "synthetic" | "text" -> fit.json
    comparisons: Mapping[str, dict]  # experiment -> comparison.json
    abilities: dict | None
    paths: Mapping[str, str]  # "synthetic", "text", experiment names, "abilities" -> file


def _interval(section: dict | None, name: str) -> tuple[float, float] | None:
    ci = (section or {}).get("ci", {}).get(name)
    return None if ci is None or None in ci else (float(ci[0]), float(ci[1]))


def _fit_error(fit: dict, verdict: str) -> str:
    """The fit's calibrated error rate for the verdict it printed."""
    cal = fit.get("calibration")
    if not cal:
        return "not calibrated: the sweep's calibration did not run"
    if verdict == YES:
        return f"false yes {cal['false_yes']:.1%}"
    if verdict == NO:
        return f"false no {cal['false_no']:.1%}"
    return f"false no {cal['false_no']:.1%}, false yes {cal['false_yes']:.1%}"


def sweep_claims(source: str, fit: dict, path: str) -> list[Claim]:
    """Claims 1, 2, 3, 4a and 4b from one sweep's fit.json."""
    verdict = fit.get("verdict") or {}
    outcome = verdict.get("outcome", UNTESTED)
    checks = verdict.get("checks", {})
    frontier = fit.get("frontier") or {}
    alpha = frontier.get("alpha")
    alpha_ci = _interval(frontier, "alpha")
    error = _fit_error(fit, outcome)
    rows = [
        Claim(f"1/{source}", "Loss falls as a smooth power law of compute", "the sweep's verdict", outcome,
              outcome, "alpha", alpha, alpha_ci, error, path),
    ]  # fmt: skip
    decade = frontier.get("per_decade")
    cut_ci = _interval(decade, "cut")
    if outcome == UNTESTED:
        tier = UNTESTED
    elif not (checks.get("frontier") and checks.get("residual") and checks.get("holdout")):
        tier = NO
    else:
        tier = YES if cut_ci is not None and cut_ci[0] > 0 else NO
    rows.append(
        Claim(f"2/{source}", "Each 10x of compute buys a constant cut of the reducible loss",
              "per-decade cut of the offset law; its constancy: the hold-out", tier, tier,
              "cut per decade", None if decade is None else decade["cut"], cut_ci,
              _fit_error(fit, tier), path)
    )  # fmt: skip
    iso = fit.get("isoflop")
    a = None if iso is None else iso.get("a")
    a_ci = _interval(iso, "a")
    if a_ci is None:
        proportion, grows = UNTESTED, UNTESTED
    else:
        if a_ci[0] <= 0.5 <= a_ci[1]:
            proportion = YES if a_ci[1] - a_ci[0] <= PROPORTION_WIDTH else INCONCLUSIVE
        else:
            proportion = NO
        grows = YES if a_ci[0] > 0 else NO
    iso_error = "not calibrated: the bootstrap interval of a"
    rows.append(
        Claim(f"3/{source}", "Parameters and data grow in proportion (N_opt ~ C^0.5)",
              "IsoFLOP exponent a of N_opt ~ C^a (D_opt ~ C^(1-a))", proportion, proportion, "a", a, a_ci,
              iso_error, path)
    )  # fmt: skip
    rows.append(
        Claim(f"4a/{source}", "Parameters: bigger models are part of the optimum", "IsoFLOP exponent a > 0",
              grows, grows, "a", a, a_ci, iso_error, path)
    )  # fmt: skip
    falls = UNTESTED if alpha_ci is None else (YES if alpha_ci[0] > 0 else NO)
    rows.append(
        Claim(f"4b/{source}", "Compute: more compute lowers the loss", "frontier exponent alpha > 0", falls,
              falls, "alpha", alpha, alpha_ci, "not calibrated: the bootstrap interval of alpha", path)
    )  # fmt: skip
    return rows


def direction(variant: dict, *, shallower_counts: bool = False) -> str:
    """'worse', 'better', 'none' (no effect shown) or 'unclear' for a comparison's variant: where its
    verdict says it differs (the top gap, the slope's end at the top, the offset), is its loss higher?
    With shallower_counts, a shallower slope is 'worse' and a steeper one 'better' whatever the top."""
    verdict = variant["verdict"]
    top, slope, offset = (variant[q]["value"] for q in ("top", "slope", "offset"))
    if verdict == NO_EFFECT:
        return "none"
    if verdict == "changes at the top":
        return "worse" if top > 0 else "better"
    if verdict == "changes the slope":
        sign = slope if shallower_counts else top
        return "worse" if sign > 0 else "better"
    if verdict == "changes the offset":
        return "worse" if offset > 0 else "better"
    return "unclear"


def _comparison_error(variant: dict) -> str:
    truth = EFFECTS.get(variant["verdict"]) or ("no effect" if variant["verdict"] == NO_EFFECT else None)
    right = (variant.get("calibration") or {}).get(truth) if truth else None
    if right is None:
        return "not calibrated: an inconclusive verdict names no truth"
    return f"{1 - right:.1%} wrong ('{truth}' simulated)"


# (key, claim, experiment, variant, shallower counts as worse)
EXPERIMENT_CLAIMS = (
    ("4c", "Data quantity: fresh data beats repeated data", "data_quantity", "repeated", False),
    ("4d", "Data quality: clean data beats noisy data", "data_quality", "noisy", False),
    ("4e", "A scalable objective: dense next-token prediction beats a sparse one", "objective", "last_token",
     False),
    ("4f", "An architecture that lets information flow: attention beats recurrence", "architecture", "lstm",
     True),
    ("4g", "Numerical conditioning: an adaptive optimiser beats plain momentum", "conditioning", "sgd", True),
)  # fmt: skip


def _variant(comparison: dict | None, name: str) -> dict | None:
    return next((v for v in (comparison or {}).get("variants", []) if v["variant"] == name), None)


def experiment_claims(results: Results) -> list[Claim]:
    """Claims 3b and 4c-4g from the comparisons."""
    rows = []
    for key, claim, experiment, name, shallower in EXPERIMENT_CLAIMS:
        v = _variant(results.comparisons.get(experiment), name)
        path = results.paths.get(experiment, "")
        test = f"{name} paired with the reference, budget by budget and seed by seed"
        if v is None:
            rows.append(Claim(key, claim, test, UNTESTED, UNTESTED, "top d", None, None, "", path))
            continue
        way = direction(v, shallower_counts=shallower)
        verdict = {"worse": YES, "better": NO, "none": NO}.get(way, INCONCLUSIVE)
        rows.append(
            Claim(key, claim, f"{test}: {v['verdict']}" + (f" ({v['direction']})" if v["direction"] else ""),
                  verdict, verdict, "top d = ln(L_variant / L_ref)", v["top"]["value"], tuple(v["top"]["ci"]),
                  _comparison_error(v), path)
        )  # fmt: skip
    comparison = results.comparisons.get("proportion")
    arms = [_variant(comparison, n) for n in ("model_only", "data_only")]
    path = results.paths.get("proportion", "")
    if None in arms:
        missing = Claim("3b", PROPORTION_CLAIM, PROPORTION_TEST, UNTESTED, UNTESTED, "", None, None, "", path)
        return [missing, *rows]
    ways = [direction(v) for v in arms]
    verdict = YES if ways == ["worse", "worse"] else NO if {"better", "none"} & set(ways) else INCONCLUSIVE
    worst = max(arms, key=lambda v: v["top"]["value"])
    errors = "; ".join(f"{v['variant']}: {_comparison_error(v)}" for v in arms)
    test = f"{PROPORTION_TEST}: " + ", ".join(f"{v['variant']} {v['verdict']}" for v in arms)
    top = worst["top"]
    proportion = Claim("3b", PROPORTION_CLAIM, test, verdict, verdict, f"top d of {worst['variant']}",
                       top["value"], tuple(top["ci"]), errors, path)  # fmt: skip
    return [proportion, *rows]


PROPORTION_CLAIM = "Growing parameters and data in proportion beats growing one"
PROPORTION_TEST = "model_only and data_only paired with balanced"


def abilities_claim(abilities: dict | None, path: str) -> Claim:
    """Claim 5 from the abilities study."""
    claim, test = "Loss is predictable while skills can appear abruptly", "the abilities study's rules"
    if not abilities:
        return Claim("5", claim, test, UNTESTED, UNTESTED, "", None, None, "", path)
    widths = abilities["widths"]
    abrupt = [w for w in widths if w["abrupt"]]
    sharpest = min(abrupt or widths, key=lambda w: w["exact"]["width"])
    verdict = YES if abrupt else NO
    level = abilities["rules"]["level"]
    count = f"{len({w['ability'] for w in abrupt})} abrupt of {len({w['ability'] for w in widths})}"
    return Claim(
        "5", claim, f"{test}: {count}",
        verdict, verdict, f"exact-match width of {sharpest['ability']} (m={sharpest['m']}), decades",
        sharpest["exact"]["width"], tuple(sharpest["exact"]["width_ci"]),
        f"false abrupt <= {level:.0%} family-wise (Bonferroni over {abilities['tests']} tests)", path,
    )  # fmt: skip


def judge_claims(results: Results) -> list[Claim]:
    """Every claim of one realization, in the report's order."""
    rows = []
    for source in SOURCES:
        if source in results.fits:
            rows += sweep_claims(source, results.fits[source], results.paths.get(source, ""))
    rows += experiment_claims(results)
    rows.append(abilities_claim(results.abilities, results.paths.get("abilities", "")))
    order = ("1/", "2/", "3/", "3b", "4a/", "4b/", "4c", "4d", "4e", "4f", "4g", "5")
    return sorted(rows, key=lambda c: next(i for i, p in enumerate(order) if c.key.startswith(p)))


def combine(first: list[Claim], second: list[Claim]) -> list[Claim]:
    """The first realization's rows with the second's verdict beside each; a row whose two verdicts
    differ is unstable, whatever either said."""
    other = {c.key: c for c in second}
    out = []
    for c in first:
        again = other.get(c.key)
        verdict = UNTESTED if again is None else again.verdict
        stable = verdict == c.verdict
        out.append(replace(
            c, second=verdict, second_value=again and again.value, second_interval=again and again.interval,
            verdict=c.verdict if stable else UNSTABLE, agrees=c.agrees if stable else UNSTABLE,
        ))  # fmt: skip
    return out
