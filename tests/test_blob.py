"""The claims report's rules (docs/blob.md) on made-up results with known answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.studies.blob.claims import (
    INCONCLUSIVE,
    NO,
    UNSTABLE,
    UNTESTED,
    YES,
    Results,
    combine,
    direction,
    judge_claims,
)

CHECKS = {"frontier": True, "residual": True, "monotone": True, "holdout": True}


def fit(outcome: str = YES, a_ci=(0.4, 0.6), alpha_ci=(0.3, 0.4), cut_ci=(0.4, 0.6), **checks) -> dict:
    return {
        "verdict": {"outcome": outcome, "checks": {**CHECKS, **checks}},
        "calibration": {"false_no": 0.04, "false_yes": 0.02},
        "frontier": {"alpha": 0.35, "ci": {"alpha": list(alpha_ci)},
                     "per_decade": {"cut": 0.5, "ci": {"cut": list(cut_ci)}}},
        "isoflop": {"a": sum(a_ci) / 2, "ci": {"a": list(a_ci)}},
    }  # fmt: skip


def variant(name: str, verdict: str, top: float = 0.1, slope: float = 0.0, offset: float = 0.0) -> dict:
    est = lambda v: {"value": v, "ci": [v - 0.01, v + 0.01]}  # noqa: E731
    cal = {"no effect": 0.98, "offset": 1.0, "slope": 0.99, "damage at the top": 0.9}
    return {"variant": name, "verdict": verdict, "direction": "", "top": est(top), "slope": est(slope),
            "offset": est(offset), "calibration": cal}  # fmt: skip


def comparisons(**verdicts) -> dict:
    out = {}
    for experiment, arms in verdicts.items():
        out[experiment] = {"variants": [variant(*arm) for arm in arms]}
    return out


def claims(fits: dict, comps: dict | None = None, abilities: dict | None = None) -> dict:
    rows = judge_claims(Results(fits, comps or {}, abilities, {}))
    return {c.key: c for c in rows}


def test_a_smooth_sweep_with_a_balanced_optimum_supports_claims_1_to_4b() -> None:
    rows = claims({"synthetic": fit()})
    assert [rows[k].verdict for k in ("1/synthetic", "2/synthetic", "3/synthetic", "4a/synthetic",
                                      "4b/synthetic")] == [YES] * 5  # fmt: skip
    assert rows["1/synthetic"].error_rate == "false yes 2.0%" and rows["1/synthetic"].interval == (0.3, 0.4)
    assert rows["3/synthetic"].error_rate.startswith("not calibrated")


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"a_ci": (0.2, 0.35)}, {"3/synthetic": NO, "4a/synthetic": YES}),  # data grows faster
        ({"a_ci": (0.1, 0.9)}, {"3/synthetic": INCONCLUSIVE, "4a/synthetic": YES}),  # too wide to tell
        ({"a_ci": (-0.1, 0.3)}, {"3/synthetic": NO, "4a/synthetic": NO}),
        ({"outcome": NO, "holdout": False}, {"1/synthetic": NO, "2/synthetic": NO}),
        ({"outcome": NO, "monotone": False}, {"1/synthetic": NO, "2/synthetic": YES}),  # cut still constant
        ({"outcome": UNTESTED}, {"1/synthetic": UNTESTED, "2/synthetic": UNTESTED}),
        ({"cut_ci": (-0.1, 0.5)}, {"2/synthetic": NO}),
        ({"alpha_ci": (-0.01, 0.2)}, {"4b/synthetic": NO}),
    ],
)
def test_each_sweep_rule(kw: dict, expected: dict) -> None:
    rows = claims({"synthetic": fit(**kw)})
    assert {k: rows[k].verdict for k in expected} == expected


def test_the_error_rate_follows_the_verdict() -> None:
    assert claims({"text": fit(outcome=NO, residual=False)})["1/text"].error_rate == "false no 4.0%"
    untested = claims({"text": fit(outcome=UNTESTED)})["1/text"].error_rate
    assert untested == "false no 4.0%, false yes 2.0%"


def test_where_a_variant_differs_decides_worse_or_better() -> None:
    assert direction(variant("x", "changes at the top", top=0.1)) == "worse"
    assert direction(variant("x", "changes at the top", top=-0.1)) == "better"
    assert direction(variant("x", "changes the slope", top=-0.1, slope=0.03)) == "better"
    shallower = variant("x", "changes the slope", top=-0.1, slope=0.03)
    assert direction(shallower, shallower_counts=True) == "worse"
    assert direction(variant("x", "changes the offset", offset=0.05)) == "worse"
    assert direction(variant("x", "no effect")) == "none"
    assert direction(variant("x", "inconclusive")) == "unclear"


def test_experiment_rules() -> None:
    comps = comparisons(
        data_quantity=[("repeated", "changes at the top", 0.3)],
        data_quality=[("noisy", "no effect", 0.0)],
        objective=[("last_token", "inconclusive", 0.01)],
        architecture=[("lstm", "changes the slope", -0.14, 0.036)],  # shallower but better at the top
        conditioning=[("sgd", "changes at the top", -0.05)],
        proportion=[
            ("model_only", "changes at the top", 0.02),
            ("data_only", "changes the offset", 0.04, 0, 0.02),
        ],
    )
    rows = claims({}, comps)
    assert {k: rows[k].verdict for k in ("3b", "4c", "4d", "4e", "4f", "4g")} == {
        "3b": YES, "4c": YES, "4d": NO, "4e": INCONCLUSIVE, "4f": YES, "4g": NO,
    }  # fmt: skip
    assert rows["4c"].error_rate == "10.0% wrong ('damage at the top' simulated)"
    assert rows["4e"].error_rate.startswith("not calibrated")
    worse = ("data_only", "changes the offset", 0, 0, 0.02)
    assert claims({}, comparisons(proportion=[("model_only", "no effect"), worse]))["3b"].verdict == NO
    unclear = comparisons(proportion=[("model_only", "inconclusive"), worse])
    assert claims({}, unclear)["3b"].verdict == INCONCLUSIVE
    assert claims({}, {})["4c"].verdict == UNTESTED  # the experiment did not run


def test_abilities_rule() -> None:
    def width(name: str, abrupt: bool, w: float) -> dict:
        return {"ability": name, "m": 1, "abrupt": abrupt, "exact": {"width": w, "width_ci": [w / 2, w * 2]}}

    study = {"widths": [width("copy", True, 0.2), width("skill 0", False, 1.5)], "rules": {"level": 0.05},
             "tests": 8}  # fmt: skip
    row = claims({}, {}, study)["5"]
    assert row.verdict == YES and row.value == 0.2 and "copy" in row.number and "8 tests" in row.error_rate
    study["widths"][0]["abrupt"] = False
    assert claims({}, {}, study)["5"].verdict == NO


def test_a_verdict_that_flips_between_realizations_is_unstable() -> None:
    first = judge_claims(Results({"synthetic": fit()}, {}, None, {}))
    second = judge_claims(Results({"synthetic": fit(outcome=NO, residual=False)}, {}, None, {}))
    rows = {c.key: c for c in combine(first, second)}
    assert rows["1/synthetic"].verdict == UNSTABLE and rows["1/synthetic"].second == NO
    assert rows["4a/synthetic"].verdict == YES and rows["4a/synthetic"].second == YES


def test_the_report_writes_every_claim_and_says_where_it_disagrees(tmp_path) -> None:
    import json

    from harness.studies.blob import report

    comps = comparisons(data_quality=[("noisy", "no effect", 0.0)])
    paths = {"synthetic": "runs/cpu/fit.json"}
    rows = combine(*(judge_claims(Results({"synthetic": fit()}, comps, None, paths)) for _ in range(2)))
    header = {"commit": "abc1234", "date": "2026-12-07", "realizations": ["as preset", "data.seed=7"]}
    files = report.write(tmp_path, rows, header)
    data = json.loads((tmp_path / "blob.json").read_text())
    assert len(data["claims"]) == len(rows) and data["commit"] == "abc1234"
    md = (tmp_path / "report.md").read_text()
    assert "| 1/synthetic Loss falls as a smooth power law of compute |" in md and "runs/cpu/fit.json" in md
    assert "- 4d Data quality: clean data beats noisy data" in md  # the disagreement, said plainly
    assert (tmp_path / "plots" / "claims.png").stat().st_size > 10_000 and len(files) == 3
    text = report.summary(rows)
    assert "4d" in text and "disagree" in text.splitlines()[-1]


def test_the_blob_plans_every_part_twice_and_the_second_realization_shares_no_directory() -> None:
    from harness.studies.blob.parts import EXPERIMENTS, SECOND_SEED, distinct_sweeps, plan_parts

    parts = plan_parts(("logger=off",))
    names = {p.name for p in parts}
    assert names == {"synthetic", "text", "abilities", *EXPERIMENTS} and "objective" in names
    assert {p.realization for p in parts} == {1, 2} and len(parts) == 2 * len(names)
    first = {c.sweep.dir for p in parts if p.realization == 1 for c in p.configs}
    second = [c for p in parts if p.realization == 2 for c in p.configs]
    assert all(d.startswith("runs/blob/r1/") for d in first)
    assert all(c.sweep.dir.startswith("runs/blob/r2/") and c.data.seed == SECOND_SEED for c in second)
    assert not first & {c.sweep.dir for c in second}
    assert all(str(p.evidence).startswith(f"runs/blob/r{p.realization}/") for p in parts)
    assert len(distinct_sweeps(parts)) == len(first) + len({c.sweep.dir for c in second})
    from harness.studies.compare import CompareVariants

    for part in (p for p in parts if p.kind == "experiment"):  # the callback the blob runs for each
        assert CompareVariants(**part.compare).dir == Path(part.compare["dir"])


def test_a_bad_argument_is_one_config_error() -> None:
    from harness.blob import parse
    from harness.config import ConfigError

    assert parse(["blob.dry_run=true", "logger=off"]) == (True, ("logger=off",))
    for argv, error in ((["blob.dry_run=maybe"], "blob.dry_run: 'maybe'; allowed: true, false"),
                        (["blob.speed=2"], "blob.speed: unknown; allowed: blob.dry_run"),
                        (["sweep=smoke"], "sweep: the blob plans its own sweeps")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"^{re.escape(error)}"):
            parse(argv)


def test_the_dry_run_prints_the_plan_and_its_time_and_writes_nothing(tmp_path, capsys) -> None:
    from harness.compose import compose_config
    from harness.studies.blob.parts import Part
    from harness.studies.blob.run import run_blob

    smoke = compose_config("sweep=smoke", "logger=off", f"sweep.dir={tmp_path / 'smoke'}")
    assert run_blob([Part("synthetic", "sweep", 1, (smoke,))], dry_run=True, out=tmp_path / "blob") is None
    out = capsys.readouterr().out
    assert f"{tmp_path / 'smoke'}" in out and "9 of 9 runs to train" in out and "estimate   about" in out
    assert out.rstrip().endswith("dry run: nothing trained or written") and list(tmp_path.iterdir()) == []


def test_ctrl_c_stops_the_blob_with_one_line(monkeypatch, capsys) -> None:
    import sys

    import harness.blob
    from harness.studies.blob import parts, run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(parts, "plan_parts", lambda overrides: [])
    monkeypatch.setattr(run, "run_blob", interrupted)
    monkeypatch.setattr(sys, "argv", ["harness.blob", "logger=off"])
    with pytest.raises(SystemExit) as exit_:
        harness.blob.main()
    err = capsys.readouterr().err
    assert exit_.value.code == 130
    assert err == "interrupted: the blob stopped; rerun the same command to continue\n"


def test_the_blob_scale_is_the_one_docs_blob_md_fixed() -> None:
    from harness.compose import compose_config
    from harness.studies.blob.parts import plan_parts

    parts = {(p.name, p.realization): p for p in plan_parts(("logger=off",))}
    budgets = [1e10, 1.78e10, 3.16e10, 5.62e10, 1e11, 1.78e11, 3.16e11]  # amendment 1
    synthetic, text = parts["synthetic", 1].configs[0], parts["text", 2].configs[0]
    assert synthetic.sweep.flops == budgets and synthetic.train.batch_size == 34  # 60 x (3.16e11 / 1e12)^0.5
    assert text.sweep.flops == budgets and text.train.batch_size == 9  # 30 x (3.16e11 / 3.16e12)^0.5
    assert text.sweep.replicate_budgets == [3.16e10, 3.16e11] == synthetic.sweep.replicate_budgets
    ladder = compose_config("experiment=objective", "logger=off").sweep
    for cfg in parts["objective", 1].configs:
        assert cfg.sweep.widths == ladder.widths[:-1] and cfg.sweep.tokens == ladder.tokens[:-1]
        assert cfg.sweep.seeds == [1]
    assert all(c.sweep.seeds == [1] for c in parts["proportion", 2].configs)
    assert parts["abilities", 1].configs[0].sweep.flops == [1e10, 2e10, 4e10, 8e10, 1.6e11]
    gpu = {(p.name, p.realization): p for p in plan_parts(("sweep=gpu", "logger=off"))}
    assert gpu["synthetic", 1].configs[0].sweep.flops == compose_config("sweep=gpu").sweep.flops
