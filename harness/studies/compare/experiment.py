"""An ingredient experiment's directory -> the comparison of its variants with the reference.

An experiment directory holds one sweep per variant (`runs/exp-<ingredient>/<variant>/results.csv`,
see configs/experiment/); the reference may live elsewhere (the four ladder experiments share one,
trained once: runs/exp-reference). `experiment.json`, written when the experiment's multirun starts
(before any run), records the reference, the decision rules (judge.Rules) and how each variant was
tuned (its `tuning` record: configs/experiment/tuning/), so the verdict rests on rules fixed before
the results were seen and the comparison says whether every arm got the same tuning procedure.
`compare_dir` pairs every variant with the reference (harness.studies.compare.paired), judges it
(verdict), fits repeated data against epochs where a variant repeats data (repetition), measures how
often the rule is right at this experiment's own noise (calibrate), and writes comparison.md,
comparison.json and comparison.png.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from harness import store
from harness.config import FitConfig
from harness.fit import FitError, jsonable
from harness.report.table import FLOP_COLUMNS
from harness.stats import PairedTest, TooFewBudgets, paired_test
from harness.studies.compare.calibrate import calibrate
from harness.studies.compare.judge import Judgement, Rules, ingredient_verdict, judge
from harness.studies.compare.paired import Curve, curve_from_rows, pair_runs
from harness.studies.compare.repetition import RepetitionFit, fit_repetition
from harness.studies.compare.variants import VariantFit, fit_variant

EXPERIMENT_JSON = "experiment.json"
CALIBRATION_DRAWS = 400  # simulated experiments per truth in the report's calibration


@dataclass(frozen=True)
class VariantResult:
    """One variant against the reference."""

    name: str
    test: PairedTest
    judgement: Judgement
    calibration: dict[str, float]  # right-verdict share per simulated truth at this variant's noise
    repetition: RepetitionFit | None = None


@dataclass(frozen=True)
class Comparison:
    experiment: str
    reference: str
    rules: Rules
    results: tuple[VariantResult, ...]
    frontiers: tuple[VariantFit, ...]  # each variant's own frontier (reference first), descriptive
    curves: dict[str, Curve]
    verdict: str
    failed: dict[str, str] = field(default_factory=dict)  # variants not compared, why
    unfitted: dict[str, str] = field(default_factory=dict)  # variants without a frontier fit, why
    tuning: dict[str, dict] = field(default_factory=dict)  # each variant's tuning record (experiment.json)

    @property
    def tuning_procedure(self) -> str | None:
        """The one tuning procedure every compared arm records; None when one records none or they differ."""
        procedures = {(self.tuning.get(name) or {}).get("procedure") for name in self.curves}
        return procedures.pop() if len(procedures) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        """comparison.json: rules, each variant's per-budget differences, estimates and verdict."""
        ci = self.rules.ci
        variants = []
        for r in self.results:
            t = r.test
            variants.append({
                "variant": r.name,
                "verdict": r.judgement.verdict,
                "direction": r.judgement.direction,
                "effects": r.judgement.effects,
                "equivalent": r.judgement.equivalent,
                "seeds": t.seeds.tolist(),
                "budgets": {
                    "C": t.C.tolist(), "epochs": t.epochs.tolist(), "mean": t.mean.tolist(),
                    "se": t.top.se, "ci": [v.tolist() for v in t.budget_interval(ci)], "d": t.d.tolist(),
                },
                "C_mid": t.C_mid,
                **{q: {"value": e.value, "se": e.se, "df": e.df, "ci": e.interval(ci)}
                   for q, e in (("offset", t.offset), ("slope", t.slope), ("top", t.top))},
                "lack_of_fit_p": t.lack_of_fit_p,
                "curvature": t.curvature,
                "sigma_run": t.sigma_run,
                "sigma_seed": t.sigma_seed,
                "dropped_budgets": t.dropped,
                "calibration": r.calibration,
                "repetition": None if r.repetition is None else asdict(r.repetition),
            })  # fmt: skip
        return jsonable({
            "experiment": self.experiment, "reference": self.reference, "rules": asdict(self.rules),
            "verdict": self.verdict, "variants": variants,
            "frontiers": [f.row() for f in self.frontiers], "failed": self.failed,
            "unfitted": self.unfitted, "tuning": self.tuning,
            "tuning_procedure": self.tuning_procedure,
        })  # fmt: skip


def compare_variant(
    ref: Curve, var: Curve, rules: Rules, *, draws: int = CALIBRATION_DRAWS
) -> VariantResult:
    """Pair, test and judge one variant; calibrate the rule at its budgets, seeds and noise."""
    t = paired_test(pair_runs(ref, var))
    cal = {}
    if t.seeds.size > 1 and draws:
        cal = calibrate(t.C, t.seeds.size, t.sigma_run, t.sigma_seed, rules, draws=draws)
    lower = t.budget_interval(rules.ci)[0]
    rep = fit_repetition(t.epochs, t.mean, t.top.se, lower, smallest=rules.min_offset, ci=rules.ci)
    return VariantResult(var.name, t, judge(t, rules), cal, rep)


def variant_dirs(exp_dir: Path) -> dict[str, Path]:
    """The variants of an experiment: its subdirectories holding a results table, by name."""
    return {p.parent.name: p.parent for p in sorted(exp_dir.glob("*/results.csv"))}


def read_experiment(exp_dir: Path) -> dict:
    """experiment.json (reference, reference_dir, rules, tuning), {} when absent."""
    return store.read_json(exp_dir / EXPERIMENT_JSON) or {}


def record_experiment(
    exp_dir: Path, *, reference: str, reference_dir: str, rules: Rules, tuning: dict[str, dict] | None = None
) -> None:
    """Write experiment.json before the runs; refuse rules other than those already recorded there.
    `tuning`: each variant's tuning record, by variant (a new record replaces the old: retuned arms
    train runs of their own)."""
    old = read_experiment(exp_dir)
    if old and old.get("rules") != asdict(rules):
        raise FitError(
            f"{exp_dir / EXPERIMENT_JSON}: its decision rules {old.get('rules')} were fixed before these "
            "runs; compare with them or start a new experiment directory"
        )
    exp_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "reference": reference, "reference_dir": reference_dir, "rules": asdict(rules), "tuning": tuning or {}
    }  # fmt: skip
    store.write_json(exp_dir / EXPERIMENT_JSON, record)


def _sweep_config(sweep_dir: Path) -> tuple[FitConfig, str | None]:
    """The sweep's fit settings and declared design, from its sweep.json (defaults and None without)."""
    config = (store.read_json(sweep_dir / store.SWEEP_JSON) or {}).get("config", {})
    return FitConfig(**config.get("fit", {})), config.get("sweep", {}).get("design")


def compare_dir(exp_dir: Path, reference: str = "", reference_dir: str = "") -> Comparison:
    """Compare every variant under exp_dir with the reference; write comparison.md/.json/.png.

    The reference, its directory and the rules come from experiment.json unless given; without either,
    the reference is the first variant by name and the rules are today's (judge.Rules).
    """
    from harness.studies.compare.report import markdown, plot

    record = read_experiment(exp_dir)
    dirs = variant_dirs(exp_dir)
    reference = reference or record.get("reference") or next(iter(dirs), "")
    ref_dir = Path(reference_dir or record.get("reference_dir") or exp_dir / reference)
    if (ref_dir / store.RESULTS_CSV).exists():
        dirs = {reference: ref_dir, **{k: v for k, v in dirs.items() if k != reference}}
    if reference not in dirs:
        raise FitError(f"{exp_dir}: no results.csv of the reference {reference!r} (looked in {ref_dir})")
    rules = Rules(**record.get("rules", {}))
    fit_cfg = _sweep_config(dirs[reference])[0]
    curves, frontiers, failed, unfitted = {}, [], {}, {}
    for name, d in dirs.items():
        rows = store.read_results_table(d)
        try:
            curves[name] = curve_from_rows(name, rows, FLOP_COLUMNS[fit_cfg.flops])
        except FitError as exc:
            failed[name] = str(exc)
            continue
        try:  # a description only: a frontier that cannot be fitted leaves the paired test alone
            frontiers.append(fit_variant(name, rows, *_sweep_config(d)))
        except FitError as exc:
            unfitted[name] = str(exc)
    if reference not in curves:
        raise FitError(f"reference variant {reference!r} cannot be compared ({failed.get(reference)})")
    results = []
    for name in (n for n in curves if n != reference):
        try:
            results.append(compare_variant(curves[reference], curves[name], rules))
        except (FitError, TooFewBudgets) as exc:
            failed[name] = str(exc)
    verdict = ingredient_verdict([r.judgement.verdict for r in results]) if results else "nothing to compare"
    c = Comparison(
        exp_dir.name, reference, rules, tuple(results), tuple(frontiers), curves, verdict, failed, unfitted,
        record.get("tuning", {}),
    )  # fmt: skip
    store.write_atomic(exp_dir / "comparison.md", markdown(c))
    store.write_json(exp_dir / "comparison.json", c.to_dict())
    plot(c, exp_dir / "comparison.png")
    return c


def print_comparison(exp_dir: Path, reference: str = "", reference_dir: str = "") -> int:
    """compare_dir, printing its terminal summary (or one line on stderr and 1 when it cannot compare);
    the Markdown goes to comparison.md."""
    from harness.studies.compare.report import summary

    try:
        c = compare_dir(exp_dir, reference, reference_dir)
    except FitError as exc:
        print(f"comparison skipped: {exc}", file=sys.stderr)
        return 1
    print(summary(c, exp_dir))
    return 0


class CompareVariants(Callback):
    """Hydra callback of an experiment's multirun (configs/experiment/*.yaml): before any job, record
    the reference, the decision rules (judge.Rules) and each variant's tuning in `dir`/experiment.json;
    once every job has returned, compare the variants and print the comparison."""

    def __init__(self, dir: str, reference: str, reference_dir: str = "", tuning: Any = None) -> None:
        from omegaconf import DictConfig, OmegaConf

        self.dir, self.reference, self.reference_dir = Path(dir), reference, reference_dir
        self.tuning = OmegaConf.to_container(tuning) if isinstance(tuning, DictConfig) else dict(tuning or {})

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        try:
            record_experiment(
                self.dir, reference=self.reference, reference_dir=self.reference_dir, rules=Rules(),
                tuning=self.tuning,
            )  # fmt: skip
        except FitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        """Compare now (before the variants' fits, so a failed fit cannot stop it), and print the summary
        as the multirun's last words, once the fits (fit_after_jobs, which ends after this) have printed."""
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            print_comparison(self.dir, self.reference, self.reference_dir)
        atexit.register(lambda: print(summary.getvalue(), end="", flush=True))
